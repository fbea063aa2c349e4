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

fit_all <- function(y, vardir, X, methods, max_iter) {
  out <- list()
  for (method in methods) {
    eb <- eblupFH(y ~ X - 1, vardir, method = method, MAXITER = max_iter)
    if (!eb$fit$convergence) {
      out[[method]] <- list(converged = FALSE, iterations = eb$fit$iterations)
      next
    }
    ms <- mseFH(y ~ X - 1, vardir, method = method, MAXITER = max_iter)
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

case <- function(description, y, vardir, X, methods = c("REML", "ML", "FH"), max_iter = 100) {
  list(description = description, max_iter = max_iter, direct = as.vector(y), vardir = as.vector(vardir),
       X = unname(split(X, row(X))),
       results = fit_all(as.vector(y), as.vector(vardir), unname(X), methods, max_iter))
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
#    values for 30 iterations before settling (truncated at 0). The FH moment iterations jump around
#    chaotically among negative values here and never settle within 100 iterations in sae; whether a
#    chaotic path happens to meet the stopping rule depends on the last bits of rounding, so FH is
#    not a reference for this case.
y_osc <- X_zero %*% c(0.7, 1.2) + 0.4 * noise
osc_case <- case("synthetic: as 3 with smaller noise; REML passes through negative values (REML and ML only)",
                 y_osc, vardir_zero, X_zero, methods = c("REML", "ML"))
stopifnot(osc_case$results$REML$converged, osc_case$results$REML$iterations > 20)

# 5. milk again with at most 2 iterations: no method has converged (sae reports convergence = FALSE).
short_case <- case("sae::milk with MAXITER = 2: no method converges", milk$yi, milk$SD^2, X_milk, max_iter = 2)
stopifnot(!any(sapply(short_case$results, function(r) r$converged)))

out <- list(
  meta = list(package = "sae", version = as.character(packageVersion("sae")),
              r_version = R.version.string, functions = "eblupFH, mseFH (PRECISION = 1e-4; MAXITER = max_iter of each case)"),
  cases = list(milk = milk_case, synthetic = syn_case, truncated = zero_case, oscillating = osc_case, too_few_iterations = short_case)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/sae_reference.json")
