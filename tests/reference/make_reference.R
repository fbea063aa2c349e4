# Expected values for tests/test_survey_reference.py, computed by R's survey package itself.
#
# Run from the repository root:  Rscript tests/reference/make_reference.R
# Needs R with the 'survey' and 'jsonlite' packages (Debian: r-base-core r-cran-survey r-cran-jsonlite).
# Writes tests/reference/survey_reference.json: one entry per case, naming the design (built the same
# way in the Python test), the Python method and arguments, and R's result rows in the order
# analysis.survey returns them (domains sorted, then variables / levels).

suppressMessages({library(survey); library(jsonlite)})
options(survey.lonely.psu = "fail")
here <- "tests/reference"
schema <- fromJSON(file.path(here, "data", "schema.json"), simplifyVector = FALSE)

load <- function(name) {
  sch <- schema$datasets[[name]]
  classes <- sapply(sch$columns, function(c) if (c$r_class == "character") "character" else NA)
  names(classes) <- sapply(sch$columns, function(c) c$name)
  d <- read.csv(file.path(here, "data", sch$file), colClasses = classes, na.strings = "",
                check.names = FALSE)
  for (c in sch$columns) if (c$r_class == "factor") d[[c$name]] <- factor(d[[c$name]], levels = unlist(c$levels))
  d
}

apisrs <- load("apisrs"); apistrat <- load("apistrat"); apiclus1 <- load("apiclus1")
apiclus2 <- load("apiclus2"); nhanes <- load("nhanes"); fpcdat <- load("fpc"); mu284 <- load("mu284")
scd <- load("scd")
# Columns the select_multiple and ratio missing-value cases use (built the same way in the Python test):
# a question "prog" asked only where sch.wide is Yes, with three 0/1 options (NA for the others);
# a ratio numerator that is skipped (NA) where ell > 30, and a denominator set to 0 where meals < 20.
derive <- function(d) {
  d$answered <- d$sch.wide == "Yes"
  opt <- function(x) ifelse(d$answered, as.numeric(x), NA)
  d[["prog/awards"]] <- opt(d$awards == "Yes")
  d[["prog/meals"]] <- opt(d$meals > 50)
  d[["prog/ell"]] <- opt(d$ell > 20)
  d$num_na <- ifelse(d$ell > 30, NA, d$api.stu)
  d$num_na0 <- ifelse(is.na(d$num_na), 0, d$num_na)  # numerator_na_to_0 done by hand
  d$den0 <- ifelse(d$meals < 20, 0, d$enroll)
  d
}
apisrs <- derive(apisrs); apistrat <- derive(apistrat); apiclus1 <- derive(apiclus1); apiclus2 <- derive(apiclus2)
fpcdat$frac <- fpcdat$nh / fpcdat$Nh
scd$one <- 1
# a small design with one stratum holding a single PSU: apiclus1 districts split into three strata
lone <- apiclus1
lone$grp <- ifelse(lone$dnum == max(lone$dnum), "z", ifelse(lone$dnum < median(unique(lone$dnum)), "a", "b"))

designs <- list(
  srs = svydesign(ids = ~1, fpc = ~fpc, data = apisrs),
  srs_nofpc = svydesign(ids = ~1, weights = ~pw, data = apisrs),
  strat = svydesign(ids = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat),
  clus1 = svydesign(ids = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1),
  clus1_nofpc = svydesign(ids = ~dnum, weights = ~pw, data = apiclus1),
  clus2 = svydesign(ids = ~dnum + snum, fpc = ~fpc1 + fpc2, data = apiclus2),
  clus2_nofpc = svydesign(ids = ~dnum + snum, weights = ~pw, data = apiclus2),
  mu284 = svydesign(ids = ~id1 + id2, fpc = ~n1 + n2, data = mu284),
  nhanes = svydesign(ids = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes),
  fpc_pop = svydesign(ids = ~psuid, strata = ~stratid, weights = ~weight, fpc = ~Nh, nest = TRUE, data = fpcdat),
  fpc_frac = svydesign(ids = ~psuid, strata = ~stratid, fpc = ~frac, nest = TRUE, data = fpcdat)
)

pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
pop_schwide <- data.frame(sch.wide = c("No", "Yes"), Freq = c(1072, 5122))  # apipop counts; sums to 6194 as pop_stype
designs$clus1_ps <- postStratify(designs$clus1, ~stype, pop_stype)
designs$clus1_rake <- rake(designs$clus1, list(~stype, ~sch.wide), list(pop_stype, pop_schwide),
                           control = list(maxit = 100, epsilon = 1e-10))
# one margin whose first school (H) is not its first level in sorted order
designs$clus1_rake1 <- rake(designs$clus1, list(~stype), list(pop_stype), control = list(maxit = 100, epsilon = 1e-10))
pop_cal <- c(`(Intercept)` = 6194, stypeH = 755, stypeM = 1018, api99 = 3914069)  # R's ?calibrate example
designs$clus1_cal <- calibrate(designs$clus1, ~stype + api99, pop_cal)
# two-stage designs with the fpc at both stages, calibrated, and calibrations applied one after another
designs$clus2_rake <- rake(designs$clus2, list(~stype, ~sch.wide), list(pop_stype, pop_schwide),
                           control = list(maxit = 100, epsilon = 1e-10))
designs$clus2_ps_rake <- rake(postStratify(designs$clus2, ~sch.wide, pop_schwide), list(~stype, ~sch.wide),
                              list(pop_stype, pop_schwide), control = list(maxit = 100, epsilon = 1e-10))
designs$clus2_ps_cal <- calibrate(postStratify(designs$clus2, ~sch.wide, pop_schwide), ~stype + api99, pop_cal)
designs$clus1_jk1_cal <- calibrate(as.svrepdesign(designs$clus1, type = "JK1"), ~stype + api99, pop_cal)
designs$clus1_jk1 <- as.svrepdesign(designs$clus1, type = "JK1")
designs$strat_jkn <- as.svrepdesign(designs$strat, type = "JKn")
designs$nhanes_jkn <- as.svrepdesign(designs$nhanes, type = "JKn")
designs$clus1_jk1_ps <- postStratify(as.svrepdesign(designs$clus1, type = "JK1"), ~stype, pop_stype)
designs$clus1_jk1_rake <- rake(as.svrepdesign(designs$clus1, type = "JK1"), list(~stype, ~sch.wide),
                               list(pop_stype, pop_schwide), control = list(maxit = 100, epsilon = 1e-10))
designs$scd_brr <- svrepdesign(data = scd, type = "BRR", weights = ~one, combined.weights = FALSE,
                               repweights = 2 * cbind(c(1, 0, 1, 0, 1, 0), c(1, 0, 0, 1, 0, 1),
                                                      c(0, 1, 1, 0, 0, 1), c(0, 1, 0, 1, 1, 0)))
# user-supplied combined replicate weights: delete-one-district columns, named rep1..rep15
districts <- sort(unique(apiclus1$dnum))
repw <- sapply(districts, function(d) apiclus1$pw * (apiclus1$dnum != d) * 15 / 14)
designs$clus1_user_mse <- svrepdesign(data = apiclus1, type = "other", weights = ~pw, repweights = repw,
                                      combined.weights = TRUE, scale = 0.9, rscales = seq(0.5, 1.9, by = 0.1),
                                      mse = TRUE)
designs$clus1_user_jk1 <- svrepdesign(data = apiclus1, type = "JK1", weights = ~pw, repweights = repw,
                                      combined.weights = TRUE, scale = 14 / 15, mse = FALSE)
for (rule in c("remove", "adjust", "average", "certainty")) {
  options(survey.lonely.psu = rule)
  designs[[paste0("lone_", rule)]] <- svydesign(ids = ~dnum, strata = ~grp, weights = ~pw, data = lone)
}
options(survey.lonely.psu = "fail")

# ---- result rows ---------------------------------------------------------------------------
rows_stat <- function(x, df = Inf) {
  ci <- confint(x, df = df)
  d <- attr(x, "deff")
  data.frame(estimate = as.vector(coef(x)), se = as.vector(SE(x)), ci_low = ci[, 1], ci_high = ci[, 2],
             deff = if (is.null(d)) NA else if (is.matrix(d)) diag(d) else as.vector(d))
}
# svyby rows in analysis.survey's order: domains sorted by the by-variables (first one slowest),
# then the statistics (variables or levels) within each domain; df = degf of each domain's subset
# of design `dfd` (the design itself, or without missing values when na.rm=TRUE).
rows_by <- function(x, dfd, df = Inf) {
  byvars <- names(x)[attr(x, "svyby")$margins]
  keys <- x[, byvars, drop = FALSE]
  nd <- nrow(keys)
  ns <- attr(x, "svyby")$nstats
  o <- do.call(order, unname(as.list(keys)))
  ci <- if ("ci_l" %in% names(x)) cbind(x$ci_l, x$ci_u) else confint(x, df = df)  # Woodruff CI of svyquantile
  d <- tryCatch(as.vector(as.matrix(deff(x))), error = function(e) rep(NA, nd * ns))
  if (is.null(d) || length(d) == 0) d <- rep(NA, nd * ns)
  take <- function(v) as.vector(t(matrix(as.matrix(v), nrow = nd, ncol = ns)[o, , drop = FALSE]))
  dfs <- sapply(o, function(i) {
    inset <- Reduce(`&`, lapply(byvars, function(b) as.character(dfd$variables[[b]]) == as.character(keys[i, b])))
    degf(dfd[which(inset), ])
  })
  data.frame(estimate = take(coef(x)), se = take(SE(x)), ci_low = take(ci[, 1]), ci_high = take(ci[, 2]),
             deff = take(d), df = rep(dfs, each = ns))
}
rows_ratio <- function(x, df = Inf) {
  ci <- confint(x, df = df)
  d <- attr(x, "deff")
  data.frame(estimate = as.vector(coef(x)), se = as.vector(SE(x)), ci_low = ci[, 1], ci_high = ci[, 2],
             deff = if (is.null(d)) NA else as.vector(d))
}
rows_ciprop <- function(x) {
  ci <- attr(x, "ci")
  data.frame(estimate = as.vector(x), se = sqrt(as.vector(attr(x, "var"))), ci_low = ci[[1]], ci_high = ci[[2]],
             deff = NA)
}
rows_quantile <- function(x) {
  r <- x[[1]]
  data.frame(estimate = r[, 1], se = r[, 4], ci_low = r[, 2], ci_high = r[, 3], deff = NA)
}
cases <- list()
add <- function(id, design, method, args, rows, df = NULL) {
  if (!is.null(df)) rows$df <- df
  cases[[length(cases) + 1]] <<- list(id = id, design = design, method = method, args = args, rows = rows)
}

sub_degf <- function(d, by) sapply(split(seq_len(nrow(d$variables)), by), function(i) degf(d[i, ]))

for (dn in c("srs", "srs_nofpc", "strat", "clus1", "clus1_nofpc", "clus2", "clus2_nofpc", "clus1_ps",
             "clus1_rake", "clus1_cal", "clus1_jk1", "clus1_jk1_cal", "strat_jkn", "clus1_jk1_ps", "clus1_jk1_rake", "clus1_user_mse",
             "clus1_user_jk1", "clus2_rake", "clus2_ps_rake", "clus2_ps_cal", "clus1_rake1")) {
  d <- designs[[dn]]
  df <- degf(d)
  is_rep <- inherits(d, "svyrep.design")  # survey 4.1-1's svyratio.svyrep.design fails with deff=TRUE
  add(paste(dn, "mean"), dn, "mean", list(variables = "api00"), rows_stat(svymean(~api00, d, deff = TRUE)), df)
  add(paste(dn, "mean2"), dn, "mean", list(variables = list("api00", "ell")),
      rows_stat(svymean(~api00 + ell, d, deff = TRUE)), df)
  dd <- d[!is.na(d$variables$enroll), ]  # apiclus2 lacks enroll for 6 schools
  add(paste(dn, "total"), dn, "total", list(variables = "enroll", na_rm = TRUE),
      rows_stat(svytotal(~enroll, d, deff = TRUE, na.rm = TRUE)), degf(dd))
  add(paste(dn, "proportion"), dn, "proportion", list(variable = "stype", ci = "wald"),
      rows_stat(svymean(~stype, d, deff = TRUE)), df)
  add(paste(dn, "ratio"), dn, "ratio", list(numerator = "api.stu", denominator = "enroll", na_rm = TRUE),
      rows_ratio(svyratio(~api.stu, ~enroll, d, deff = !is_rep, na.rm = TRUE)), degf(dd))
  bydf <- sub_degf(d, d$variables$stype)
  add(paste(dn, "mean by stype"), dn, "mean", list(variables = "api00", by = "stype"),
      rows_by(svyby(~api00, ~stype, d, svymean, deff = TRUE), d))
  add(paste(dn, "total by stype"), dn, "total", list(variables = "enroll", by = "stype", na_rm = TRUE),
      rows_by(svyby(~enroll, ~stype, d, svytotal, deff = TRUE, na.rm = TRUE), dd))
  add(paste(dn, "ratio by stype"), dn, "ratio",
      list(numerator = "api.stu", denominator = "enroll", by = "stype", na_rm = TRUE),
      rows_by(svyby(~api.stu, ~stype, d, svyratio, denominator = ~enroll, deff = !is_rep, na.rm = TRUE), dd))
  add(paste(dn, "proportion by stype+awards"), dn, "proportion",
      list(variable = "sch.wide", by = list("stype", "awards"), ci = "wald"),
      rows_by(svyby(~sch.wide, ~stype + awards, d, svymean, deff = TRUE), d))
  for (m in c("logit", "beta")) {
    add(paste(dn, "ciprop", m), dn, "proportion", list(variable = "sch.wide", ci = m),
        rbind(rows_ciprop(svyciprop(~I(sch.wide == "No"), d, method = m)),
              rows_ciprop(svyciprop(~I(sch.wide == "Yes"), d, method = m))), df)
    add(paste(dn, "ciprop by stype", m), dn, "proportion", list(variable = "sch.wide", by = "stype", ci = m),
        do.call(rbind, lapply(levels(apiclus1$stype), function(s) {
          ds <- d[d$variables$stype == s, ]
          rbind(rows_ciprop(svyciprop(~I(sch.wide == "No"), ds, method = m)),
                rows_ciprop(svyciprop(~I(sch.wide == "Yes"), ds, method = m)))
        })), rep(bydf, each = 2))
  }
  add(paste(dn, "quantile"), dn, "quantile", list(variable = "api00", q = list(0.25, 0.5, 0.9)),
      rows_quantile(svyquantile(~api00, d, c(0.25, 0.5, 0.9), ci = TRUE)), df)
  add(paste(dn, "quantile by stype"), dn, "quantile", list(variable = "api00", q = 0.5, by = "stype"),
      rows_by(svyby(~api00, ~stype, d, svyquantile, quantiles = 0.5, ci = TRUE,
                    vartype = c("se", "ci")), d))
}

# ---- options the list-of-analyses engine needs: select_multiple, df choices, qrule, ratio NAs -----
opts <- c("prog/awards", "prog/meals", "prog/ell")
opts_formula <- as.formula(paste("~", paste0("`", opts, "`", collapse = " + ")))
# (na.rm = TRUE: a calibrated design's subset keeps the other rows, with their missing options, at weight 0)
# each domain's subset of design d (levels of stype in order), and the rows of a per-domain statistic
by_stype <- function(d) lapply(levels(apiclus1$stype), function(s) d[which(d$variables$stype == s), ])
for (dn in c("srs", "strat", "clus1", "clus2", "clus1_ps", "clus1_rake", "clus1_cal", "clus1_jk1", "strat_jkn",
             "clus1_jk1_rake")) {
  d <- designs[[dn]]
  answered <- d[which(d$variables$answered), ]
  # select_multiple: svymean of each option's dummy on the subset of respondents
  add(paste(dn, "select_multiple"), dn, "proportion", list(variable = "prog", options = as.list(opts), ci = "wald"),
      rows_stat(svymean(opts_formula, answered, deff = TRUE, na.rm = TRUE)), degf(answered))
  add(paste(dn, "select_multiple logit"), dn, "proportion",
      list(variable = "prog", options = as.list(opts), respondents = "answered", ci = "logit"),
      do.call(rbind, lapply(opts, function(o)
        rows_ciprop(svyciprop(as.formula(paste0("~`", o, "`")), answered, method = "logit", na.rm = TRUE)))),
      degf(answered))
  if (dn %in% c("strat", "clus1", "clus1_rake", "clus1_jk1")) {  # every option varies in every stype there
    add(paste(dn, "select_multiple by stype"), dn, "proportion",
        list(variable = "prog", options = as.list(opts), by = "stype", ci = "wald"),
        rows_by(svyby(opts_formula, ~stype, answered, svymean, deff = TRUE, na.rm = TRUE), answered))
  }
  # t intervals with the whole design's df (confint(df = degf(design)), srvyr)
  dd <- d[!is.na(d$variables$enroll), ]
  add(paste(dn, "mean df=design"), dn, "mean", list(variables = "api00", df = "design"),
      rows_stat(svymean(~api00, d, deff = TRUE), degf(d)), degf(d))
  add(paste(dn, "total by stype df=design"), dn, "total",
      list(variables = "enroll", by = "stype", na_rm = TRUE, df = "design"),
      rows_by(svyby(~enroll, ~stype, d, svytotal, deff = TRUE, na.rm = TRUE), dd, degf(d)))
  add(paste(dn, "ratio by stype df=design"), dn, "ratio",
      list(numerator = "api.stu", denominator = "enroll", by = "stype", na_rm = TRUE, df = "design"),
      rows_by(svyby(~api.stu, ~stype, d, svyratio, denominator = ~enroll, na.rm = TRUE), dd, degf(d)))
  # t intervals with each domain's df (degf of the domain's subset, as svyciprop on a subset)
  add(paste(dn, "mean by stype df=domain"), dn, "mean", list(variables = "api00", by = "stype", df = "domain"),
      do.call(rbind, lapply(by_stype(d), function(s) rows_stat(svymean(~api00, s, deff = TRUE), degf(s)))),
      sapply(by_stype(d), degf))
  add(paste(dn, "total by stype df=domain"), dn, "total",
      list(variables = "enroll", by = "stype", na_rm = TRUE, df = "domain"),
      do.call(rbind, lapply(by_stype(dd), function(s) rows_stat(svytotal(~enroll, s, deff = TRUE), degf(s)))),
      sapply(by_stype(dd), degf))
  add(paste(dn, "ratio by stype df=domain"), dn, "ratio",
      list(numerator = "api.stu", denominator = "enroll", by = "stype", na_rm = TRUE, df = "domain"),
      do.call(rbind, lapply(by_stype(dd), function(s) rows_ratio(svyratio(~api.stu, ~enroll, s), degf(s)))),
      sapply(by_stype(dd), degf))
  add(paste(dn, "ciprop by stype df=design"), dn, "proportion",
      list(variable = "sch.wide", by = "stype", ci = "logit", df = "design"),
      do.call(rbind, lapply(by_stype(d), function(s)
        rbind(rows_ciprop(svyciprop(~I(sch.wide == "No"), s, method = "logit", df = degf(d))),
              rows_ciprop(svyciprop(~I(sch.wide == "Yes"), s, method = "logit", df = degf(d)))))),
      rep(sapply(by_stype(d), degf), each = 2))
  # quantiles: qrule = "school", and the normal quantile (df = Inf)
  add(paste(dn, "quantile school"), dn, "quantile",
      list(variable = "api00", q = list(0.1, 0.25, 0.5, 0.75), qrule = "school"),
      rows_quantile(svyquantile(~api00, d, c(0.1, 0.25, 0.5, 0.75), ci = TRUE, qrule = "school")), degf(d))
  add(paste(dn, "quantile by stype school"), dn, "quantile",
      list(variable = "api00", q = 0.5, by = "stype", qrule = "school"),
      rows_by(svyby(~api00, ~stype, d, svyquantile, quantiles = 0.5, ci = TRUE, qrule = "school",
                    vartype = c("se", "ci")), d))
  add(paste(dn, "quantile df=z"), dn, "quantile", list(variable = "api00", q = list(0.25, 0.5), df = "z"),
      rows_quantile(svyquantile(~api00, d, c(0.25, 0.5), ci = TRUE, df = Inf)), degf(d))
  # ratio missing values as analysistools: numerator NA counted as 0, rows with denominator 0 left out
  d0 <- d[which(!is.na(d$variables$den0)), ]
  kept <- d[which(!is.na(d$variables$den0) & d$variables$den0 != 0), ]
  add(paste(dn, "ratio numerator_na_to_0"), dn, "ratio",
      list(numerator = "num_na", denominator = "den0", na_rm = TRUE, numerator_na_to_0 = TRUE),
      rows_ratio(svyratio(~num_na0, ~den0, d0)), degf(d0))
  add(paste(dn, "ratio numerator_na_to_0 filter_denominator_0"), dn, "ratio",
      list(numerator = "num_na", denominator = "den0", na_rm = TRUE, numerator_na_to_0 = TRUE,
           filter_denominator_0 = TRUE),
      rows_ratio(svyratio(~num_na0, ~den0, kept)), degf(kept))
  add(paste(dn, "ratio by stype filter_denominator_0 df=domain"), dn, "ratio",
      list(numerator = "num_na", denominator = "den0", by = "stype", na_rm = TRUE, numerator_na_to_0 = TRUE,
           filter_denominator_0 = TRUE, df = "domain"),
      do.call(rbind, lapply(by_stype(kept), function(s) rows_ratio(svyratio(~num_na0, ~den0, s), degf(s)))),
      sapply(by_stype(kept), degf))
}

# ---- change between two waves: one stacked design, svyby(covmat = TRUE) then svycontrast -----------
# The same schools measured in 1999 (api99) and 2000 (api00), stacked: clusters (districts, or the
# schools themselves in the stratified sample) keep their ids, so the two waves' estimates covary.
stack_waves <- function(d) {
  a <- d; a$wave <- 1999; a$y <- a$api99
  b <- d; b$wave <- 2000; b$y <- b$api00
  s <- rbind(a, b)
  s$band <- cut(s$y, c(-Inf, 600, 750, Inf), labels = c("low", "mid", "high"))
  s
}
designs$clus1_waves <- svydesign(ids = ~dnum, weights = ~pw, fpc = ~fpc, data = stack_waves(apiclus1))
designs$strat_waves <- svydesign(ids = ~snum, strata = ~stype, weights = ~pw, fpc = ~fpc, data = stack_waves(apistrat))
designs$clus2_waves <- svydesign(ids = ~dnum + snum, fpc = ~fpc1 + fpc2, data = stack_waves(apiclus2))
designs$clus1_waves_jk1 <- as.svrepdesign(designs$clus1_waves, type = "JK1")
designs$strat_waves_jkn <- as.svrepdesign(designs$strat_waves, type = "JKn")
# rows of svycontrast(b, second − first) for each (first, second) pair of svyby coefficient names;
# the interval with df[i] (Inf: R's default normal quantile)
rows_contrast <- function(b, pairs, df = rep(Inf, length(pairs))) {
  nm <- names(coef(b))
  do.call(rbind, lapply(seq_along(pairs), function(i) {
    con <- setNames(numeric(length(nm)), nm)
    con[pairs[[i]][1]] <- -1
    con[pairs[[i]][2]] <- 1
    x <- svycontrast(b, con)
    ci <- confint(x, df = df[i])
    data.frame(estimate = as.vector(coef(x)), se = as.vector(SE(x)), ci_low = ci[, 1], ci_high = ci[, 2], deff = NA)
  }))
}
stypes <- levels(apiclus1$stype)
for (dn in c("clus1_waves", "strat_waves", "clus2_waves", "clus1_waves_jk1", "strat_waves_jkn")) {
  d <- designs[[dn]]
  dd <- d[!is.na(d$variables$enroll), ]
  sub_df <- sapply(stypes, function(s) degf(d[which(d$variables$stype == s), ]))
  args <- list(by = "wave", first = 1999, second = 2000)
  add(paste(dn, "compare mean"), dn, "compare", c(list(variable = "y"), args),
      rows_contrast(svyby(~y, ~wave, d, svymean, covmat = TRUE), list(c("1999", "2000"))), degf(d))
  add(paste(dn, "compare total by stype df=domain"), dn, "compare",
      c(list(variable = "y", statistic = "total", domains = "stype", df = "domain"), args),
      rows_contrast(svyby(~y, ~wave + stype, d, svytotal, covmat = TRUE),
                    lapply(stypes, function(s) paste(c(1999, 2000), s, sep = ".")), sub_df), sub_df)
  add(paste(dn, "compare mean by stype"), dn, "compare", c(list(variable = "y", domains = "stype"), args),
      rows_contrast(svyby(~y, ~wave + stype, d, svymean, covmat = TRUE),
                    lapply(stypes, function(s) paste(c(1999, 2000), s, sep = "."))), sub_df)
  add(paste(dn, "compare proportion"), dn, "compare", c(list(variable = "band", statistic = "proportion"), args),
      rows_contrast(svyby(~band, ~wave, d, svymean, covmat = TRUE),
                    lapply(c("low", "mid", "high"), function(l) paste0(c(1999, 2000), ":band", l))), degf(d))
}

d <- designs$mu284
add("mu284 mean", "mu284", "mean", list(variables = "y1"), rows_stat(svymean(~y1, d, deff = TRUE)), degf(d))
add("mu284 total", "mu284", "total", list(variables = "y1"), rows_stat(svytotal(~y1, d, deff = TRUE)), degf(d))
for (dn in c("fpc_pop", "fpc_frac")) {
  d <- designs[[dn]]
  add(paste(dn, "mean"), dn, "mean", list(variables = "x"), rows_stat(svymean(~x, d, deff = TRUE)), degf(d))
  add(paste(dn, "total"), dn, "total", list(variables = "x"), rows_stat(svytotal(~x, d, deff = TRUE)), degf(d))
}
for (dn in c("nhanes", "nhanes_jkn")) {
  d <- designs[[dn]]
  dd <- d[!is.na(d$variables$HI_CHOL), ]
  add(paste(dn, "mean na_rm"), dn, "mean", list(variables = "HI_CHOL", na_rm = TRUE),
      rows_stat(svymean(~HI_CHOL, d, na.rm = TRUE, deff = TRUE)), degf(dd))
  add(paste(dn, "total na_rm"), dn, "total", list(variables = "HI_CHOL", na_rm = TRUE),
      rows_stat(svytotal(~HI_CHOL, d, na.rm = TRUE, deff = TRUE)), degf(dd))
  add(paste(dn, "mean by race na_rm"), dn, "mean", list(variables = "HI_CHOL", by = "race", na_rm = TRUE),
      rows_by(svyby(~HI_CHOL, ~race, d, svymean, na.rm = TRUE, deff = TRUE), dd))
  add(paste(dn, "proportion agecat by sex"), dn, "proportion", list(variable = "agecat", by = "RIAGENDR", ci = "wald"),
      rows_by(svyby(~agecat, ~RIAGENDR, d, svymean, deff = TRUE), d))
  add(paste(dn, "quantile na_rm"), dn, "quantile", list(variable = "HI_CHOL", q = 0.5, na_rm = TRUE),
      rows_quantile(svyquantile(~HI_CHOL, d, 0.5, ci = TRUE, na.rm = TRUE)), degf(dd))
}
d <- designs$scd_brr
add("scd_brr mean", "scd_brr", "mean", list(variables = "arrests"), rows_stat(svymean(~arrests, d)), degf(d))
add("scd_brr ratio", "scd_brr", "ratio", list(numerator = "alive", denominator = "arrests"),
    rows_ratio(svyratio(~alive, ~arrests, d)), degf(d))
for (rule in c("remove", "adjust", "average", "certainty")) {
  dn <- paste0("lone_", rule)
  options(survey.lonely.psu = rule)
  d <- designs[[dn]]
  add(paste(dn, "mean"), dn, "mean", list(variables = "api00"), rows_stat(svymean(~api00, d, deff = TRUE)), degf(d))
  add(paste(dn, "total"), dn, "total", list(variables = "enroll"), rows_stat(svytotal(~enroll, d, deff = TRUE)), degf(d))
  add(paste(dn, "mean by stype"), dn, "mean", list(variables = "api00", by = "stype"),
      rows_by(svyby(~api00, ~stype, d, svymean, deff = TRUE), d))
  rd <- as.svrepdesign(d, type = "JKn")
  designs[[paste0(dn, "_jkn")]] <- rd
  add(paste(dn, "jkn mean"), paste0(dn, "_jkn"), "mean", list(variables = "api00"),
      rows_stat(svymean(~api00, rd)), degf(rd))
}
options(survey.lonely.psu = "fail")

fail_message <- tryCatch({svymean(~api00, svydesign(ids = ~dnum, strata = ~grp, weights = ~pw, data = lone)); ""},
                         error = function(e) conditionMessage(e))

out <- list(
  meta = list(r_version = R.version.string, survey_version = as.character(packageVersion("survey")),
              generated_by = "tests/reference/make_reference.R",
              populations = list(stype = setNames(as.list(pop_stype$Freq), pop_stype$stype),
                                 sch.wide = setNames(as.list(pop_schwide$Freq), pop_schwide$sch.wide)),
              lonely_fail_message = fail_message),
  cases = cases
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE),
           file.path(here, "survey_reference.json"))
cat("wrote", length(cases), "cases\n")
