# R `survey` side of benchmarks/bench_core.py: one operation on one synthetic design per call.
#
#   Rscript benchmarks/bench_core.R DATA.csv MARGINS.json OP REPEATS OUT.json [FACTORS.csv]
#
# OP: mean | domains | crossed | rake | bootstrap | bootstrap_check. Each timed run builds the design and
# runs the operation (as the Python side does). bootstrap uses R's Rao-Wu bootstrap
# (as.svrepdesign type="subbootstrap", 200 replicates); bootstrap_check (untimed) puts the Python
# side's PSU factors (FACTORS.csv) into R's compressed replicate weights, so R computes the SE
# from the same replicates and the two SEs can be compared.

suppressMessages({library(survey); library(jsonlite)})
args <- commandArgs(TRUE)
data_file <- args[1]; margins_file <- args[2]; op <- args[3]
repeats <- as.integer(args[4]); out_file <- args[5]
factors_file <- if (length(args) >= 6) args[6] else NA

df <- read.csv(data_file, colClasses = c(stratum = "integer", psu = "integer", w = "numeric", y = "numeric",
                                          b = "integer", dom = "integer", sex = "character", age = "character"))
m <- fromJSON(margins_file)
pop_sex <- data.frame(sex = names(m$sex), Freq = unlist(m$sex))
pop_age <- data.frame(age = names(m$age), Freq = unlist(m$age))

run <- function() {
  d <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = df)
  switch(op,
    mean = svymean(~y, d),
    domains = svyby(~y, ~dom, d, svymean),
    crossed = svyby(~y, ~g1 + g2, d, svymean),
    rake = svymean(~y, rake(d, list(~sex, ~age), list(pop_sex, pop_age),
                            control = list(maxit = 100, epsilon = 1e-10))),
    bootstrap = svymean(~y, as.svrepdesign(d, type = "subbootstrap", replicates = 200)),
    bootstrap_check = {
      f <- as.matrix(read.csv(factors_file))
      rd <- as.svrepdesign(d, type = "subbootstrap", replicates = ncol(f))
      rd$repweights$weights <- f  # rows in order of first appearance of each PSU, as R's index
      svymean(~y, rd)
    })
}

times <- numeric(0)
for (i in seq_len(repeats)) {
  gc()
  t0 <- proc.time()[["elapsed"]]
  r <- run()
  times <- c(times, proc.time()[["elapsed"]] - t0)
}
est <- as.vector(coef(r)); se <- as.vector(SE(r))
if (op == "crossed") { ord <- order(r$g1, r$g2); est <- est[ord]; se <- se[ord] }  # as the Python side
writeLines(toJSON(list(tool = "R survey", version = as.character(packageVersion("survey")), op = op,
                       times = times, estimate = est, se = se),
                  digits = NA, auto_unbox = FALSE), out_file)
