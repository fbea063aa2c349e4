"""Small-area estimates for each 村居: the Fay–Herriot area-level model and its use for Leliu.

The model (Fay & Herriot 1979; Rao & Molina, *Small Area Estimation*, 2nd ed. 2015, ch. 6): the direct
estimate of area i is yᵢ = xᵢᵀβ + uᵢ + eᵢ with area effects uᵢ ~ N(0, σ²ᵤ) and sampling errors
eᵢ ~ N(0, ψᵢ), ψᵢ known. The EBLUP is γᵢ yᵢ + (1 − γᵢ) xᵢᵀβ̂ with γᵢ = σ²ᵤ / (σ²ᵤ + ψᵢ): a precise direct
estimate is kept, a noisy one is pulled towards the regression on what the frame knows about the area.

:func:`fay_herriot` follows R ``sae`` 1.3 (Molina & Marhuenda, R Journal 7(1), 2015), functions
``eblupFH`` and ``mseFH``, step for step: σ²ᵤ by Fisher scoring (REML, ML) or by Fay–Herriot's moment
equation (FH), started at the median of ψ, stopped when the relative change is below ``precision``,
truncated at 0; MSE by Prasad–Rao (FH) or Datta–Lahiri (REML, ML). tests/test_sae_reference.py shows
agreement with sae to 1e-6.

For Leliu, :func:`fit_cunju` turns stage 03's direct estimates of each team's headline prevalence by
村居 into model-based ones, in the way of R ``emdi::fh`` with the arcsine transformation:

- *covariates*: from the population frame only, fixed in advance and the same for every team: the
  share of the team's target group without local registration and its mean age (:func:`frame_covariates`;
  with 22 村居, two covariates and an intercept leave 19 degrees of freedom, and no selection step
  whose uncertainty the MSE would miss);
- *sampling variances*: a 村居's design variance rests on 2–9 residential groups (1–8 degrees of
  freedom), too unstable to plug in. They are smoothed by a generalised variance function: on the
  arcsine scale, ψᵢ = deff / (4 nᵢ), nᵢ the 村居's respondents in the target group and deff one design
  effect per team, pooled as Σ vᵢ / Σ p̂ᵢ(1 − p̂ᵢ)/nᵢ over 村居 (:func:`pooled_deff`);
- *transformation*: yᵢ = asin √p̂ᵢ, whose variance 1/(4 n_eff) does not depend on p; back-transformed
  as E[sin² θᵢ] under θᵢ ~ N(EBLUP, g₁ᵢ) (:func:`arcsine_mean`, emdi's "bc"), not the naive sin²(EBLUP);
- *MSE on the proportion scale*: parametric bootstrap of the whole procedure (:func:`bootstrap_mse`);
- *benchmarking*: ratio benchmarking so that the 村居 estimates weighted by the estimated target-group
  size add up to the direct all-Leliu estimate; the change is added to the MSE;
- *fallback*: the direct estimate is kept for a 村居 the model does not fit (standardised residual
  beyond ±3), and for every 村居 of a team when the model cannot be fitted; ``method`` and ``note`` say so.

tests/test_sae_coverage.py checks the result over 200 simulated samples against the planted truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from analysis.errors import AnalysisError

METHODS = ("REML", "ML", "FH")


class FitError(AnalysisError):
    """The Fay–Herriot model cannot be fitted (iterations do not converge, too few areas, singular X)."""


@dataclass(frozen=True)
class FayHerriot:
    """A fitted Fay–Herriot model (arrays in the order of the areas given).

    ``eblup`` and ``mse`` on the scale of the direct estimates; ``refvar`` = σ̂²ᵤ; ``beta`` and ``beta_se``
    the regression coefficients and their standard errors (√diag (XᵀV⁻¹X)⁻¹); ``gamma`` = σ̂²ᵤ/(σ̂²ᵤ + ψᵢ),
    the weight of the direct estimate; ``synthetic`` = Xβ̂; ``beta_cov`` = (XᵀV⁻¹X)⁻¹; ``iterations`` of
    the σ²ᵤ algorithm.
    """

    method: str
    eblup: np.ndarray
    mse: np.ndarray
    refvar: float
    beta: np.ndarray
    beta_se: np.ndarray
    gamma: np.ndarray
    synthetic: np.ndarray
    beta_cov: np.ndarray
    iterations: int


def _checked(direct, vardir, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs as float arrays, or an AnalysisError saying what is wrong with them."""
    y = np.asarray(direct, dtype=float).ravel()
    psi = np.asarray(vardir, dtype=float).ravel()
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    m, p = X.shape
    if len(y) != m or len(psi) != m:
        raise FitError(
            f"direct ({len(y)}), vardir ({len(psi)}) and X ({m} rows) must have one entry per area"
        )
    for name, values in (("direct", y), ("vardir", psi), ("X", X)):
        if not np.isfinite(values).all():
            raise FitError(f"{name} contains missing or infinite values", column=name)
    if (psi <= 0).any():
        raise FitError(
            "sampling variances must be positive",
            column="vardir",
            hint="smooth them (a generalised variance function) instead of using zero variances",
        )
    if m <= p or np.linalg.matrix_rank(X) < p:
        raise FitError(
            f"X ({m} areas × {p} columns) must have full column rank and more areas than columns", column="X"
        )
    return y, psi, X


def _weighted_fits(Y, psi, X, A):
    """For each row b of Y (B × m) and area-effect variance A[b]: V⁻¹ (B × m), (XᵀV⁻¹X)⁻¹ (B × p × p), β̂."""
    vi = 1.0 / (A[:, None] + psi)
    Q = np.linalg.inv(np.einsum("bi,ij,ik->bjk", vi, X, X))
    beta = np.einsum("bjk,bk->bj", Q, np.einsum("bi,ij->bj", vi * Y, X))
    return vi, Q, beta


def _refvars(Y, psi, X, method: str, max_iter: int, precision: float):
    """σ̂²ᵤ for each row of Y (B data sets sharing ψ and X), iterations, and whether each converged.

    As sae's eblupFH: start at median ψ, update A ← A + s(A)/F(A) (Fisher scoring on the REML or ML
    likelihood, or Newton on the FH moment equation Σ (yᵢ − xᵢᵀβ̂)²/(A + ψᵢ) = m − p) until
    |ΔA / A| ≤ ``precision``, at most ``max_iter`` times; negative values are kept while iterating
    and set to 0 at the end. The REML terms use P = V⁻¹ − V⁻¹XQXᵀV⁻¹ without forming it:
    Py = V⁻¹(y − Xβ̂), tr P = Σvᵢ − tr(QXᵀV⁻²X), tr P² = Σvᵢ² − 2tr(QXᵀV⁻³X) + tr((QXᵀV⁻²X)²).
    """
    B, m = Y.shape
    p = X.shape[1]
    A = np.full(B, float(np.median(psi)))
    iterations = np.zeros(B, dtype=int)
    change = np.full(B, precision + 1.0)
    failed = np.zeros(B, dtype=bool)
    for _ in range(max_iter):
        active = (change > precision) & ~failed
        if not active.any():
            break
        a, y = A[active], Y[active]
        vi, Q, beta = _weighted_fits(y, psi, X, a)
        resid = y - beta @ X.T
        if method == "FH":
            score, info = np.sum(resid**2 * vi, axis=1) - (m - p), np.sum(vi, axis=1)
        else:
            py = vi * resid
            if method == "REML":
                q2 = np.einsum("bjk,bkl->bjl", Q, np.einsum("bi,ij,il->bjl", vi**2, X, X))
                q3 = np.einsum("bjk,bkj->b", Q, np.einsum("bi,ij,il->bjl", vi**3, X, X))
                trace_p = np.sum(vi, axis=1) - np.einsum("bjj->b", q2)
                trace_pp = np.sum(vi**2, axis=1) - 2 * q3 + np.einsum("bjk,bkj->b", q2, q2)
                score, info = -0.5 * trace_p + 0.5 * np.sum(py**2, axis=1), 0.5 * trace_pp
            else:
                score = -0.5 * np.sum(vi, axis=1) + 0.5 * np.sum(py**2, axis=1)
                info = 0.5 * np.sum(vi**2, axis=1)
        new = a + score / info
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.abs((new - a) / a)
        failed[np.flatnonzero(active)[a == 0]] = True  # sae stops with an error when A hits exactly 0
        A[active], change[active] = new, step
        iterations[active] += 1
    converged = ~failed & ~((iterations >= max_iter) & (change >= precision))
    return np.maximum(A, 0.0), iterations, converged


def fay_herriot(
    direct, vardir, X, method: str = "REML", max_iter: int = 100, precision: float = 1e-4
) -> FayHerriot:
    """Fit the Fay–Herriot model: EBLUP and MSE per area, as R ``sae::eblupFH`` and ``sae::mseFH``.

    ``direct``: m direct estimates; ``vardir``: their sampling variances ψᵢ (> 0, treated as known);
    ``X``: the m × p design matrix used as given (add a column of ones for an intercept).
    ``method``: ``"REML"`` or ``"ML"`` (Fisher scoring) or ``"FH"`` (Fay–Herriot moment equation).
    MSE: Prasad–Rao for FH, Datta–Lahiri for ML and REML (Rao & Molina 2015, §6.2.1): g₁ + g₂ + 2g₃,
    less the bias term b·(ψᵢ/(σ²ᵤ+ψᵢ))² for ML and FH. Raises :class:`FitError` when the iterations
    do not converge in ``max_iter`` steps (sae then reports ``convergence = FALSE``).
    """
    if method not in METHODS:
        raise FitError(f"method {method!r} is not one of {', '.join(METHODS)}", column="method")
    y, psi, X = _checked(direct, vardir, X)
    m = len(y)
    A, iterations, converged = _refvars(y[None, :], psi, X, method, max_iter, precision)
    if not converged[0]:
        raise FitError(
            f"{method} estimation of the area-effect variance did not converge in {max_iter} iterations",
            hint="use the direct estimates, another method, or fewer covariates",
        )
    A, iterations = float(A[0]), int(iterations[0])
    vi, Q, beta = (part[0] for part in _weighted_fits(y[None, :], psi, X, np.array([A])))
    synthetic = X @ beta
    gamma = A * vi
    eblup = synthetic + gamma * (y - synthetic)

    shrink = psi * vi  # Bᵢ = ψᵢ / (σ²ᵤ + ψᵢ) = 1 − γᵢ
    g1 = psi * (1 - shrink)
    g2 = shrink**2 * np.einsum("ij,jk,ik->i", X, Q, X)
    sum_vi2 = np.sum(vi**2)
    if method == "FH":
        sum_vi = np.sum(vi)
        var_a = 2 * m / sum_vi**2
        bias = 2 * (m * sum_vi2 - sum_vi**2) / sum_vi**3
    else:
        var_a = 2 / sum_vi2
        bias = -np.trace(Q @ ((vi**2)[:, None] * X).T @ X) / sum_vi2 if method == "ML" else 0.0
    g3 = shrink**2 * var_a * vi
    mse = g1 + g2 + 2 * g3 - bias * shrink**2
    return FayHerriot(
        method=method,
        eblup=eblup,
        mse=mse,
        refvar=A,
        beta=beta,
        beta_se=np.sqrt(np.diag(Q)),
        gamma=gamma,
        synthetic=synthetic,
        beta_cov=Q,
        iterations=iterations,
    )


# ---- Leliu: model-based 村居 estimates of each team's headline prevalence ----------------------------

COVARIATES = ("nonlocal_share", "mean_age")
OPEN_BAND_YEARS = 10  # width given to the frame's open top band ("80+") when ages are spread within bands
MAX_RESIDUAL = 3.0  # |standardised residual| above which a 村居 keeps its direct estimate
MIN_AREAS = 10  # fewer 村居 with a direct estimate than this: no model, every 村居 keeps its direct estimate


def frame_covariates(
    frame: pd.DataFrame, universe: dict | None = None, cunju_table: pd.DataFrame | None = None
) -> pd.DataFrame:
    """What the population frame says about each 村居's target group (one row per 村居).

    ``frame``: persons by cunju × sex × age band × registration (``population_frame.csv``); ``universe``:
    the team's ``age_min``/``age_max`` (``needs.yaml``; empty = everyone). Persons are taken as spread
    evenly over the years of their band (the open top band over ``OPEN_BAND_YEARS`` years), so a band
    partly inside the universe counts with the part inside. Columns: ``nonlocal_share`` (share without
    local registration), ``mean_age`` (years, from band midpoints), ``male_share``, ``target_share``
    (target group / all residents) and, with ``cunju_table`` (``cunju.csv``), ``household_size``
    (residents per household).
    """
    from analysis.weights import parse_age_bands

    universe = universe or {}
    bands = parse_age_bands(frame["age_band"]).set_index("band")
    low = bands["low"].astype(float)
    high = np.where(np.isinf(bands["high"]), low + OPEN_BAND_YEARS - 1, bands["high"]).astype(float) + 1
    u_low, u_high = float(universe.get("age_min", 0)), float(universe.get("age_max", np.inf)) + 1
    part_low, part_high = np.maximum(low, u_low), np.minimum(high, u_high)
    inside = pd.Series(np.clip(part_high - part_low, 0, None) / (high - low), index=bands.index)
    midpoint = pd.Series((part_low + part_high) / 2, index=bands.index)
    band = frame["age_band"].astype(str)
    people = frame["population"].to_numpy(dtype=float) * band.map(inside).to_numpy()
    sums = (
        pd.DataFrame(
            {
                "target": people,
                "nonlocal": people * (frame["registration"].astype(str) == "nonlocal").to_numpy(),
                "age": people * band.map(midpoint).to_numpy(),
                "male": people * (frame["sex"].astype(str) == "male").to_numpy(),
                "everyone": frame["population"].to_numpy(dtype=float),
            }
        )
        .groupby(frame["cunju"].astype(str).to_numpy())
        .sum()
    )
    out = pd.DataFrame(
        {
            "nonlocal_share": sums["nonlocal"] / sums["target"],
            "mean_age": sums["age"] / sums["target"],
            "male_share": sums["male"] / sums["target"],
            "target_share": sums["target"] / sums["everyone"],
        }
    )
    if cunju_table is not None:
        sizes = cunju_table.set_index(cunju_table["cunju"].astype(str))
        out["household_size"] = sizes["residents"] / sizes["households"]
    return out.rename_axis("cunju")


def pooled_deff(estimate, se, n) -> float:
    """One design effect for all 村居 of an indicator: Σ vᵢ / Σ p̂ᵢ(1 − p̂ᵢ)/nᵢ over 村居 with respondents.

    vᵢ = se² is the direct design variance (1–8 degrees of freedom per 村居, too unstable to use alone);
    the ratio of sums pools them into one deff with about (PSUs − 村居) degrees of freedom.
    """
    p, v, n = (np.asarray(a, dtype=float) for a in (estimate, se, n))
    ok = (n > 0) & np.isfinite(p) & np.isfinite(v)
    srs = np.sum(p[ok] * (1 - p[ok]) / n[ok])
    return float(np.sum(v[ok] ** 2) / srs) if srs > 0 else 1.0


def arcsine_mean(mean, var) -> np.ndarray:
    """E[sin²(θ)] for θ ~ N(mean, var) truncated to [0, π/2] (θ < 0 counts as 0, θ > π/2 as 1).

    The bias-corrected back-transform of an arcsine-scale estimate (emdi ``fh``, backtransformation
    "bc", after Slud & Maiti 2006), here in closed form instead of numerical integration:
    sin² = (1 − cos 2θ)/2 and E[e^{2iθ}; a < θ < b] = e^{2iμ − 2σ²}[Φ(β − 2iσ) − Φ(α − 2iσ)] with
    α, β the standardised limits (Φ of a complex argument through the complex error function).
    """
    mu = np.asarray(mean, dtype=float)
    sd = np.sqrt(np.asarray(var, dtype=float))
    naive = np.sin(np.clip(mu, 0, np.pi / 2)) ** 2
    safe = np.where(sd > 1e-12, sd, 1.0)
    a, b = (0 - mu) / safe, (np.pi / 2 - mu) / safe

    def phi(z):
        return 0.5 * (1 + special.erf(z / np.sqrt(2)))

    inside = special.ndtr(b) - special.ndtr(a)  # the normal cdf (scipy.stats' norm.cdf)
    cos_part = np.real(np.exp(2j * mu - 2 * safe**2) * (phi(b - 2j * safe) - phi(a - 2j * safe)))
    value = (inside - cos_part) / 2 + special.ndtr(-b)  # norm.sf(b)
    return np.where(sd > 1e-12, np.clip(value, 0, 1), naive)


def bootstrap_mse(
    design,
    observed,
    psi,
    beta,
    refvar: float,
    method: str,
    replicates: int,
    rng,
    max_iter: int = 100,
    precision: float = 1e-4,
) -> tuple[np.ndarray, int]:
    """Parametric bootstrap MSE of the back-transformed EBLUP, on the proportion scale (per area).

    As emdi's ``fh`` for the arcsine transformation (after González-Manteiga et al. 2008): each
    replicate draws area values θ*ᵢ = xᵢᵀβ̂ + u*ᵢ, u* ~ N(0, σ̂²ᵤ), whose proportions sin²θ*ᵢ (θ clipped to
    [0, π/2]) are the replicate's truth, and direct estimates y*ᵢ = θ*ᵢ + e*ᵢ, e* ~ N(0, ψᵢ), for the areas
    ``observed``; the model is refitted by ``method`` and back-transformed with :func:`arcsine_mean`.
    MSE = mean over replicates of (estimate − truth)². Unobserved areas get the synthetic estimate.
    Replicates whose fit does not converge are left out; returns the MSE and how many were left out.
    """
    design, observed, psi = np.asarray(design, float), np.asarray(observed, bool), np.asarray(psi, float)
    X = design[observed]
    theta = design @ beta + rng.normal(0.0, np.sqrt(refvar), (replicates, len(design)))
    truth = np.sin(np.clip(theta, 0, np.pi / 2)) ** 2
    y = theta[:, observed] + rng.normal(0.0, np.sqrt(psi[observed]), (replicates, len(X)))
    A, _, converged = _refvars(y, psi[observed], X, method, max_iter, precision)
    if not converged.any():
        return np.full(len(design), np.nan), replicates
    vi, _, b = _weighted_fits(y, psi[observed], X, A)
    estimate = b @ design.T
    gamma = A[:, None] * vi
    estimate[:, observed] += gamma * (y - estimate[:, observed])
    posterior = np.repeat(A[:, None], len(design), axis=1)
    posterior[:, observed] = gamma * psi[observed]
    error = arcsine_mean(estimate, posterior) - truth
    return np.mean(error[converged] ** 2, axis=0), int((~converged).sum())


@dataclass(frozen=True)
class CunjuFit:
    """Model-based 村居 estimates and what went into them.

    ``rows``: one row per team × 村居 in the columns of ``demand/results.csv`` plus ``method`` ("fh" or
    "direct") and ``note`` (why a 村居 keeps its direct estimate). ``areas``: per team × 村居 the direct
    estimate and SE, n, the GVF variance ψ (arcsine scale), shrinkage γ (weight of the direct estimate),
    standardised residual, synthetic and model estimates with the model's bootstrap SE before
    benchmarking, and the published ``estimate``/``se``/``method``. ``models``: per team the covariates,
    pooled deff, σ̂²ᵤ, β̂ and SE(β̂) (intercept first), benchmark factor, bootstrap replicates left out
    and ``status``.
    """

    rows: pd.DataFrame
    areas: pd.DataFrame
    models: pd.DataFrame


def _direct_rows(heads: pd.DataFrame, team: str) -> tuple[pd.DataFrame, pd.Series]:
    """The team's headline prevalence by 村居 (indexed by 村居) and its all-Leliu row."""
    head = heads[heads["team"] == team]
    overall = head[head["group"] == "all"]
    if overall.empty:
        raise AnalysisError(
            f"the results have no all-Leliu row of in_need_{team}",
            column="group",
            hint="pass the unsuppressed estimates of stage 03 (DemandRun.estimates)",
        )
    by_cunju = head[head["group"] == "cunju"]
    return by_cunju.set_index(by_cunju["group_value"].astype(str)), overall.iloc[0]


def _team_fit(
    direct: pd.DataFrame, target: float, X: pd.DataFrame, method: str, replicates: int, rng
) -> tuple[dict, dict]:
    """One team's model: per-村居 columns (dict of arrays, in the order of X) and the model summary.

    ``direct``: the team's direct 村居 rows indexed by 村居; ``target``: its direct all-Leliu estimate.
    """
    d = direct.reindex(X.index)
    n = d["n"].fillna(0).to_numpy(dtype=float)
    p, se = d["estimate"].to_numpy(dtype=float), d["se"].to_numpy(dtype=float)
    observed = (n > 0) & np.isfinite(p) & np.isfinite(se)
    deff = pooled_deff(p[observed], se[observed], n[observed])
    psi = np.where(observed, deff / (4 * np.maximum(n, 1)), np.nan)
    y = np.arcsin(np.sqrt(np.clip(p, 0, 1)))
    blank = np.full(len(n), np.nan)
    areas = {
        "n": n,
        "direct": p,
        "direct_se": se,
        "psi": psi,
        "gamma": blank,
        "residual": blank,
        "synthetic": blank,
        "model": blank,
        "model_se": blank,
        "estimate": p,
        "se": se,
        "method": np.full(len(n), "direct", dtype=object),
        "note": np.full(len(n), "", dtype=object),
    }
    summary = {
        "covariates": ", ".join(X.columns),
        "deff": deff,
        "areas": int(observed.sum()),
        "refvar": np.nan,
        "beta": "",
        "beta_se": "",
        "benchmark_factor": np.nan,
        "replicates_dropped": 0,
        "status": "fitted",
    }

    def direct_only(reason: str) -> tuple[dict, dict]:
        return {**areas, "note": np.full(len(n), reason, dtype=object)}, {**summary, "status": reason}

    if observed.sum() < MIN_AREAS:
        return direct_only(
            f"model not fitted: {int(observed.sum())} 村居 with a direct estimate (fewer than {MIN_AREAS})"
        )
    design = np.column_stack([np.ones(len(n)), X.to_numpy(dtype=float)])
    try:
        fit = fay_herriot(y[observed], psi[observed], design[observed], method=method)
    except FitError as error:
        return direct_only(f"model not fitted: {error.problem}")
    mse, dropped = bootstrap_mse(design, observed, psi, fit.beta, fit.refvar, method, replicates, rng)
    summary.update(
        refvar=fit.refvar,
        beta=" ".join(f"{b:.6g}" for b in fit.beta),
        beta_se=" ".join(f"{b:.6g}" for b in fit.beta_se),
        replicates_dropped=dropped,
    )
    if dropped > replicates / 2:
        return direct_only(f"model not used: {dropped} of {replicates} bootstrap fits did not converge")

    synthetic = design @ fit.beta
    theta, posterior, gamma = synthetic.copy(), np.full(len(n), fit.refvar), blank.copy()
    theta[observed], posterior[observed], gamma[observed] = fit.eblup, fit.gamma * psi[observed], fit.gamma
    model = arcsine_mean(theta, posterior)
    residual = (y - synthetic) / np.sqrt(fit.refvar + psi)
    misfit = observed & (np.abs(residual) > MAX_RESIDUAL)
    use = ~misfit

    # Ratio benchmarking: the model 村居 are scaled so that the 村居 estimates weighted by the estimated
    # target-group size add up to the direct all-Leliu estimate (an identity for the direct estimates).
    size = d["n_weighted"].fillna(0).to_numpy(dtype=float)
    modelled = np.sum(size[use] * model[use])
    factor = (target * size.sum() - np.sum(size[misfit] * p[misfit])) / modelled if modelled > 0 else 1.0
    benchmarked = np.clip(model * factor, 0, 1)
    summary["benchmark_factor"] = factor
    note = np.array(
        [
            f"model does not fit this 村居 (standardised residual {r:+.1f})" if bad else ""
            for r, bad in zip(residual, misfit, strict=True)
        ],
        dtype=object,
    )
    areas.update(
        gamma=gamma,
        residual=residual,
        synthetic=arcsine_mean(synthetic, 0.0),
        model=model,
        model_se=np.sqrt(mse),
        estimate=np.where(use, benchmarked, p),
        se=np.where(use, np.sqrt(mse + (benchmarked - model) ** 2), se),
        method=np.where(use, "fh", "direct").astype(object),
        note=note,
    )
    return areas, summary


def fit_cunju(
    estimates: pd.DataFrame,
    frame: pd.DataFrame,
    definitions: dict | None = None,
    cunju_table: pd.DataFrame | None = None,
    covariates: tuple[str, ...] = COVARIATES,
    method: str = "REML",
    level: float = 0.95,
    replicates: int = 200,
    seed: int = 2012,
) -> CunjuFit:
    """Fay–Herriot estimates of each team's headline prevalence (``in_need_<team>``) for every 村居.

    ``estimates``: the unsuppressed stage-03 estimates (``DemandRun.estimates``: prop rows by 村居 and
    for all Leliu, with estimate, se, n, n_weighted); ``frame``: ``population_frame.csv``;
    ``definitions``: ``needs.yaml`` (the teams' universes); ``cunju_table``: ``cunju.csv`` (only for the
    ``household_size`` covariate); ``covariates``: columns of :func:`frame_covariates`, by default the
    target group's nonlocal share and mean age for every team, fixed in advance rather than selected on
    the 22 村居 (so the MSE need not account for a selection step).

    Per team: the direct estimate goes to the arcsine scale, yᵢ = asin √p̂ᵢ, whose sampling variance is
    smoothed by the generalised variance function ψᵢ = deff / (4 nᵢ) (nᵢ respondents in the target group;
    one deff pooled over 村居, :func:`pooled_deff`); the model yᵢ = β₀ + xᵢᵀβ + uᵢ + eᵢ is fitted by
    ``method``; the EBLUP is back-transformed with the bias correction of :func:`arcsine_mean` and its
    MSE on the proportion scale comes from a parametric bootstrap (:func:`bootstrap_mse`, ``replicates``
    replicates, random numbers from ``seed``); the 村居 estimates are ratio-benchmarked to the direct
    all-Leliu estimate and the benchmarking change is added to the MSE, (benchmarked − model)². The
    interval is estimate ± z·√MSE, clipped to [0, 1]. A 村居 keeps its direct estimate (``method``
    "direct", ``note`` says why) where the model does not fit it (|standardised residual| >
    ``MAX_RESIDUAL``), and every 村居 of a team does when the model cannot be fitted (fewer than
    ``MIN_AREAS`` 村居 with respondents, iterations not converging, most bootstrap fits failing).
    Model rows are not suppressed: they are not tabulations of the respondents of one 村居.
    """
    from analysis.demand import RESULT_COLUMNS
    from analysis.indicators import load_needs

    definitions = load_needs() if definitions is None else definitions
    z = special.ndtri(0.5 + level / 2)  # the normal quantile (norm.ppf)
    heads = estimates[
        (estimates["variable"] == "in_need_" + estimates["team"])
        & (estimates["analysis_type"] == "prop")
        & (estimates["value"].astype(str) == "1")
    ]
    streams = np.random.SeedSequence(seed).spawn(len(definitions["teams"]))
    rows, areas, models = [], [], []
    for (team, spec), stream in zip(definitions["teams"].items(), streams, strict=True):
        direct, overall = _direct_rows(heads, team)
        X = frame_covariates(frame, spec.get("universe"), cunju_table)
        missing = [c for c in covariates if c not in X.columns]
        if missing:
            raise AnalysisError(
                f"unknown covariates {missing}",
                column="covariates",
                hint=f"choose among {', '.join(X.columns)}",
            )
        cols, summary = _team_fit(
            direct,
            float(overall["estimate"]),
            X[list(covariates)],
            method,
            replicates,
            np.random.default_rng(stream),
        )
        table = pd.DataFrame({"team": team, "cunju": X.index, **cols})
        areas.append(table)
        models.append({"team": team, "method": method, **summary})
        fh = (table["method"] == "fh").to_numpy()
        low = np.where(
            fh,
            np.clip(table["estimate"] - z * table["se"], 0, 1),
            direct["ci_low"].reindex(X.index).to_numpy(dtype=float),
        )
        high = np.where(
            fh,
            np.clip(table["estimate"] + z * table["se"], 0, 1),
            direct["ci_high"].reindex(X.index).to_numpy(dtype=float),
        )
        rows.append(
            pd.DataFrame(
                {
                    **{
                        c: overall[c]
                        for c in ["analysis_type", "team", "variable", "value", "universe", "unit"]
                    },
                    "group": "cunju",
                    "group_value": X.index,
                    "estimate": table["estimate"],
                    "se": table["se"],
                    "ci_low": low,
                    "ci_high": high,
                    "n": table["n"].astype(int),
                    "n_weighted": direct["n_weighted"].reindex(X.index).to_numpy(dtype=float),
                    "suppressed": False,
                    "method": table["method"],
                    "note": table["note"],
                },
                index=range(len(X)),
            )
        )
    return CunjuFit(
        rows=pd.concat(rows, ignore_index=True)[RESULT_COLUMNS + ["method", "note"]],
        areas=pd.concat(areas, ignore_index=True),
        models=pd.DataFrame(models),
    )


def cunju_estimates(estimates: pd.DataFrame, frame: pd.DataFrame, **options) -> pd.DataFrame:
    """The model-based 村居 rows of :func:`fit_cunju` (results columns + ``method`` + ``note``)."""
    return fit_cunju(estimates, frame, **options).rows


def wide_intervals(rows: pd.DataFrame, width: float = 0.30) -> tuple[int, int]:
    """How many of the shown cells (not suppressed, with an estimate) have a CI wider than ``width``
    (a proportion: 0.30 = 30 percentage points), and how many cells are shown."""
    shown = rows[~rows["suppressed"].astype(str).str.lower().isin(["true", "1"]) & rows["estimate"].notna()]
    return int(((shown["ci_high"] - shown["ci_low"]) > width).sum()), len(shown)


def with_model_rows(results: pd.DataFrame, model_rows: pd.DataFrame) -> pd.DataFrame:
    """The results table with a ``method`` column: its own rows "direct", followed by the model rows of
    :func:`cunju_estimates` that use the model (``method`` "fh"; fallback rows already are direct rows)."""
    columns = [*results.columns.drop("method", errors="ignore"), "method"]
    fh = model_rows.loc[model_rows["method"] == "fh"].reindex(columns=columns)  # model rows have no design df
    return pd.concat([results.assign(method="direct"), fh], ignore_index=True)


def preferred(results: pd.DataFrame) -> pd.DataFrame:
    """One row per estimate: the model row where there is one (``method`` "fh"), else the direct row."""
    if "method" not in results.columns:
        return results
    keys = ["analysis_type", "team", "variable", "value", "group", "group_value"]
    modelled = results.loc[results["method"] == "fh", keys].astype(str).apply(tuple, axis=1)
    key = results[keys].astype(str).apply(tuple, axis=1)
    return results[(results["method"] == "fh") | ~key.isin(set(modelled))]


def _cunju_headline(results: pd.DataFrame) -> pd.DataFrame:
    """The headline-prevalence rows by 村居 (``in_need_<team>``, prop) of a results table."""
    return results[
        (results["group"] == "cunju")
        & (results["analysis_type"] == "prop")
        & (results["variable"] == "in_need_" + results["team"])
    ]


def interval_summary(results: pd.DataFrame, width: float = 0.30) -> pd.DataFrame:
    """How many shown 村居 cells of the headline prevalences have a 95% interval wider than ``width``,
    for the direct estimates and for the published ones (model where it is used, else direct).

    ``results``: the results table with ``method`` (:func:`with_model_rows`). Columns: estimates,
    cells shown, wider (than ``width``), share wider.
    """
    rows = _cunju_headline(results)
    counts = {
        "direct": wide_intervals(rows[rows["method"] == "direct"], width),
        "model (fh where it fits)": wide_intervals(preferred(rows), width),
    }
    table = pd.DataFrame(
        [(name, shown, wide) for name, (wide, shown) in counts.items()],
        columns=["estimates", "cells shown", f"wider than {round(width * 100)} points"],
    )
    return table.assign(share=table.iloc[:, 2] / table["cells shown"])


def side_by_side(results: pd.DataFrame) -> pd.DataFrame:
    """Per team and 村居: respondents, the direct estimate and 95% interval (blank where suppressed) beside
    the published model estimate and interval, and the method used (``results`` with ``method``)."""
    rows = _cunju_headline(results)
    direct = rows[rows["method"] == "direct"].set_index(["team", "group_value"])
    chosen = preferred(rows).set_index(["team", "group_value"])
    out = pd.DataFrame(
        {
            "n": chosen["n"].astype("Int64"),
            "direct": direct["estimate"],
            "direct_low": direct["ci_low"],
            "direct_high": direct["ci_high"],
            "model": chosen["estimate"],
            "model_low": chosen["ci_low"],
            "model_high": chosen["ci_high"],
            "method": chosen["method"],
        },
        index=chosen.index,
    )
    return out.rename_axis(["team", "cunju"]).reset_index()
