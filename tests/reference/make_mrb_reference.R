# Reference values for tests/test_mrb.py: Preston's multistage rescaled bootstrap as R's survey package
# builds it (as.svrepdesign(type = "mrbbootstrap"), function mrbweights).
#
# Run from the repository root:  Rscript tests/reference/make_mrb_reference.R
# Needs R with the 'survey' and 'jsonlite' packages (Debian: r-base-core r-cran-survey r-cran-jsonlite).
# Writes tests/reference/data/mrb_strat2.csv (a small stratified two-stage sample drawn here) and
# tests/reference/mrb_reference.json.
#
# R's replicates are random, so two things are recorded per design:
# 1. "recorded": a few replicates built by R's own mrbweights with every half-sample R drew written
#    down (base::sample is wrapped to note its result; the replicate weights are checked identical to
#    as.svrepdesign's with the same seed). Given the same half-samples, Python must give the same
#    replicate factors, and the same totals and SEs on that replicate design.
# 2. "expectation": R's linearised variance of totals with fpc at both stages (what the bootstrap
#    variance estimates without bias) and R's own mrbbootstrap variance from many replicates with its
#    Monte Carlo standard error.

suppressMessages({library(survey); library(jsonlite)})
# a group with one responding household adds no variance at stage 2 (mrbweights: no half-sample of 1)
options(survey.lonely.psu = "certainty")
# keep the rows of a stratum sampled whole (s5) in replicate totals: their households still vary at
# stage 2, which R's default (survey.drop.replicates = TRUE) would leave out of svytotal's variance
options(survey.drop.replicates = FALSE)
here <- "tests/reference"

# -- a stratified two-stage sample with fpc at both stages (village-like strata, households in groups)
set.seed(20120411)
strata <- data.frame(stratum = c("s1", "s2", "s3", "s4", "s5"), N_h = c(9, 13, 19, 31, 3), n_h = c(2, 3, 4, 7, 3))
take <- c(1, 2, 3, 5, 12, 25)  # households responding per group, including a lone household
rows <- list()
for (h in seq_len(nrow(strata))) {
  for (i in seq_len(strata$n_h[h])) {
    N_i <- sample(40:300, 1)
    n_i <- take[(h + i) %% length(take) + 1]
    effect <- rnorm(1, 0, 0.6)
    y1 <- round(rgamma(n_i, shape = 2, rate = 2 / (3 + effect + h / 2)), 3)
    y2 <- as.integer(runif(n_i) < plogis(-1 + effect + h / 5))
    rows[[length(rows) + 1]] <- data.frame(
      stratum = strata$stratum[h], psu = sprintf("%s-g%02d", strata$stratum[h], i),
      hh = sprintf("h%03d", seq_len(n_i)), N_h = strata$N_h[h], N_i = N_i, y1 = y1, y2 = y2)
  }
}
strat2 <- do.call(rbind, rows)
write.csv(strat2, file.path(here, "data", "mrb_strat2.csv"), row.names = FALSE)

apiclus2 <- read.csv(file.path(here, "data", "apiclus2.csv"))
mu284 <- read.csv(file.path(here, "data", "mu284.csv"))
mu284$one <- 1
apiclus2$one <- 1
strat2$one <- 1

designs <- list(
  strat2 = list(design = svydesign(ids = ~psu + hh, strata = ~stratum, fpc = ~N_h + N_i, data = strat2),
                ids = c("psu", "hh"), strata = "stratum", fpc = c("N_h", "N_i"), variables = c("y1", "y2", "one")),
  apiclus2 = list(design = svydesign(ids = ~dnum + snum, fpc = ~fpc1 + fpc2, data = apiclus2),
                  ids = c("dnum", "snum"), strata = NULL, fpc = c("fpc1", "fpc2"), variables = c("api00", "one")),
  mu284 = list(design = svydesign(ids = ~id1 + id2, fpc = ~n1 + n2, data = mu284),
               ids = c("id1", "id2"), strata = NULL, fpc = c("n1", "n2"), variables = c("y1", "one"))
)

# R's mrbweights with base::sample wrapped to note each half-sample (and lapply to note the replicate)
recorded_mrbweights <- function(design, replicates) {
  picks <- list()
  current <- 0L
  f <- survey:::mrbweights
  env <- new.env(parent = environment(f))
  env$lapply <- function(X, FUN, ...) base::lapply(X, function(k) { current <<- k; FUN(k) })
  env$sample <- function(x, size, ...) {
    s <- base::sample(x, size, ...)
    picks[[length(picks) + 1]] <<- list(replicate = current, units = as.character(s))
    s
  }
  environment(f) <- env
  r <- f(design$cluster, design$strata, design$fpc, replicates = replicates)
  list(r = r, picks = picks)
}

RECORDED <- 20
MANY <- 5000
out <- list(generator = "tests/reference/make_mrb_reference.R", r_version = R.version.string,
            survey_version = as.character(packageVersion("survey")), recorded_replicates = RECORDED,
            many_replicates = MANY, designs = list())

for (name in names(designs)) {
  spec <- designs[[name]]
  d <- spec$design
  form <- as.formula(paste("~", paste(spec$variables, collapse = " + ")))

  set.seed(1)
  rec <- recorded_mrbweights(d, RECORDED)
  set.seed(1)
  rep <- as.svrepdesign(d, type = "mrbbootstrap", replicates = RECORDED)
  stopifnot(identical(unname(rec$r$repweights), unname(as.matrix(rep$repweights))))
  # which rows' stage-s unit each replicate kept; stage-1 and stage-2 labels never coincide
  labels <- lapply(seq_len(ncol(d$cluster)), function(s) as.character(d$cluster[, s]))
  stopifnot(length(intersect(labels[[1]], labels[[2]])) == 0)
  kept <- lapply(labels, function(lab) matrix(0L, nrow = length(lab), ncol = RECORDED))
  for (p in rec$picks) {
    for (s in seq_along(labels)) {
      hit <- labels[[s]] %in% p$units
      kept[[s]][hit, p$replicate] <- 1L
    }
  }
  est <- svytotal(form, rep)

  set.seed(2)
  many <- as.svrepdesign(d, type = "mrbbootstrap", replicates = MANY)
  thetas <- as.matrix(svytotal(form, many, return.replicates = TRUE)$replicates)
  dev2 <- sweep(thetas, 2, colMeans(thetas))^2
  linear <- svytotal(form, d)

  out$designs[[name]] <- list(
    ids = spec$ids, strata = spec$strata, fpc = spec$fpc, variables = spec$variables,
    recorded = list(
      kept_stage1 = lapply(seq_len(RECORDED), function(r) kept[[1]][, r]),
      kept_stage2 = lapply(seq_len(RECORDED), function(r) kept[[2]][, r]),
      factors = lapply(seq_len(RECORDED), function(r) unname(rec$r$repweights[, r])),
      scale = rep$scale, rscales = rep$rscales,
      total = unname(coef(est)), se = unname(SE(est))),
    expectation = list(
      total = unname(coef(linear)), se_linear = unname(SE(linear)),
      variance_linear = unname(diag(vcov(linear))),
      variance_mrb = unname(colSums(dev2) / (MANY - 1)),
      variance_mrb_mc_se = unname(apply(dev2, 2, sd) / sqrt(MANY)))
  )
}

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE, null = "null"),
           file.path(here, "mrb_reference.json"))
cat("wrote", file.path(here, "mrb_reference.json"), "\n")
