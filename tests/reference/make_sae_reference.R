# Expected values for tests/test_sae_reference.py, computed by R's sae package (version 1.3) itself.
#
# Run from the repository root:  Rscript tests/reference/make_sae_reference.R
# Needs R with 'sae' 1.3 and 'jsonlite'. sae is not packaged by Debian; install it from its CRAN source
# (its dependencies MASS and lme4 are Debian's r-cran-mass and r-cran-lme4):
#   R CMD INSTALL -l /tmp/rlib sae_1.3.tar.gz   then   R_LIBS=/tmp/rlib Rscript tests/reference/make_sae_reference.R
# Writes tests/reference/sae_reference.json: for each data set the inputs (direct estimates, sampling
# variances, the design matrix X exactly as sae's model.matrix builds it) and, for each fitting method,
# what eblupFH and mseFH return (EBLUP, MSE, area-effect variance, coefficients and their SEs, iterations).

suppressMessages({library(sae); library(jsonlite)})
stopifnot(packageVersion("sae") == "1.3")

fit_all <- function(y, vardir, X) {
  out <- list()
  for (method in c("REML", "ML", "FH")) {
    eb <- eblupFH(y ~ X - 1, vardir, method = method)
    if (!eb$fit$convergence) {
      out[[method]] <- list(converged = FALSE, iterations = eb$fit$iterations)
      next
    }
    ms <- mseFH(y ~ X - 1, vardir, method = method)
    stopifnot(isTRUE(all.equal(as.vector(eb$eblup), as.vector(ms$est$eblup))))
    out[[method]] <- list(
      converged = TRUE,
      eblup = as.vector(eb$eblup),
      mse = as.vector(ms$mse),
      refvar = eb$fit$refvar,
      beta = eb$fit$estcoef$beta,
      beta_se = eb$fit$estcoef$std.error,
      iterations = eb$fit$iterations
    )
  }
  out
}

case <- function(description, y, vardir, X) {
  list(description = description, direct = as.vector(y), vardir = as.vector(vardir),
       X = unname(split(X, row(X))), results = fit_all(as.vector(y), as.vector(vardir), unname(X)))
}

# 1. sae's own example: milk expenditure in 43 small areas (Arora & Lahiri 1997), major area as factor.
data(milk)
X_milk <- model.matrix(yi ~ as.factor(MajorArea), data = milk)
milk_case <- case("sae::milk: yi ~ as.factor(MajorArea), vardir = SD^2 (43 areas, 4 columns)",
                  milk$yi, milk$SD^2, X_milk)

# 2. Synthetic: intercept and two covariates, area effects present, unequal sampling variances.
set.seed(20120415)
m <- 30
x1 <- runif(m, 0, 1)
x2 <- rnorm(m)
X_syn <- cbind(1, x1, x2)
vardir_syn <- runif(m, 0.2, 2)
y_syn <- X_syn %*% c(2, 1.5, -0.8) + rnorm(m, 0, 0.9) + rnorm(m, 0, sqrt(vardir_syn))
syn_case <- case("synthetic: intercept + 2 covariates, sigma_u^2 = 0.81, 30 areas (set.seed(20120415))",
                 y_syn, vardir_syn, X_syn)

# 3. Synthetic with no intercept and almost no between-area variation: every method's estimate of
#    sigma_u^2 falls below zero and is truncated at 0 (the EBLUP is then the regression fit).
set.seed(7)
m <- 20
X_zero <- cbind(runif(m, 1, 3), rbinom(m, 1, 0.4))
vardir_zero <- runif(m, 0.5, 1.5)
noise <- rnorm(m, 0, sqrt(vardir_zero))
y_zero <- X_zero %*% c(0.7, 1.2) + 0.8 * noise
zero_case <- case("synthetic: no intercept, sigma_u^2 estimate truncated at 0, 20 areas (set.seed(7))",
                  y_zero, vardir_zero, X_zero)
stopifnot(all(sapply(zero_case$results, function(r) r$refvar == 0)))

# 4. The same areas with the noise scaled by 0.4 instead: the REML iterations pass through negative
#    values (30 iterations) and the FH moment iterations oscillate around zero without converging in
#    100 iterations (sae reports convergence = FALSE).
y_osc <- X_zero %*% c(0.7, 1.2) + 0.4 * noise
osc_case <- case("synthetic: as 3 with smaller noise; the FH moment method does not converge in 100 iterations",
                 y_osc, vardir_zero, X_zero)
stopifnot(!osc_case$results$FH$converged, osc_case$results$REML$converged)

out <- list(
  meta = list(package = "sae", version = as.character(packageVersion("sae")),
              r_version = R.version.string, functions = "eblupFH, mseFH (MAXITER = 100, PRECISION = 1e-4)"),
  cases = list(milk = milk_case, synthetic = syn_case, truncated = zero_case, oscillating = osc_case)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/sae_reference.json")
