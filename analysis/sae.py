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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.errors import AnalysisError

METHODS = ("REML", "ML", "FH")


class FitError(AnalysisError):
    """The Fay–Herriot model cannot be fitted (iterations do not converge, too few areas, singular X)."""


@dataclass(frozen=True)
class FayHerriot:
    """A fitted Fay–Herriot model (arrays in the order of the areas given).

    ``eblup`` and ``mse`` on the scale of the direct estimates; ``refvar`` = σ̂²ᵤ; ``beta`` and ``beta_se``
    the regression coefficients and their standard errors (√diag (XᵀV⁻¹X)⁻¹); ``gamma`` = σ̂²ᵤ/(σ̂²ᵤ + ψᵢ),
    the weight of the direct estimate; ``synthetic`` = Xβ̂; ``iterations`` of the σ²ᵤ algorithm.
    """

    method: str
    eblup: np.ndarray
    mse: np.ndarray
    refvar: float
    beta: np.ndarray
    beta_se: np.ndarray
    gamma: np.ndarray
    synthetic: np.ndarray
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
        raise FitError(f"direct ({len(y)}), vardir ({len(psi)}) and X ({m} rows) must have one entry per area")
    for name, values in (("direct", y), ("vardir", psi), ("X", X)):
        if not np.isfinite(values).all():
            raise FitError(f"{name} contains missing or infinite values", column=name)
    if (psi <= 0).any():
        raise FitError("sampling variances must be positive", column="vardir",
                       hint="smooth them (a generalised variance function) instead of using zero variances")
    if m <= p or np.linalg.matrix_rank(X) < p:
        raise FitError(f"X ({m} areas × {p} columns) must have full column rank and more areas than columns",
                       column="X")
    return y, psi, X


def _weighted_fit(y, psi, X, A):
    """Vᵢ⁻¹, (XᵀV⁻¹X)⁻¹ and β̂ for area-effect variance A."""
    vi = 1.0 / (A + psi)
    xtvi = (vi[:, None] * X).T
    Q = np.linalg.inv(xtvi @ X)
    return vi, Q, Q @ (xtvi @ y)


def _refvar(y, psi, X, method: str, max_iter: int, precision: float) -> tuple[float, int]:
    """σ̂²ᵤ and the number of iterations, as sae's eblupFH (start at median ψ, relative-change stop)."""
    m, p = X.shape
    A = float(np.median(psi))
    k, change = 0, precision + 1
    while change > precision and k < max_iter:
        k += 1
        vi, Q, beta = _weighted_fit(y, psi, X, A)
        if method == "FH":
            resid = y - X @ beta
            score, info = np.sum(resid**2 * vi) - (m - p), np.sum(vi)
        else:
            xtvi = (vi[:, None] * X).T
            P = np.diag(vi) - xtvi.T @ Q @ xtvi
            Py = P @ y
            if method == "REML":
                score, info = -0.5 * np.trace(P) + 0.5 * Py @ Py, 0.5 * np.sum(P * P)
            else:
                score, info = -0.5 * np.sum(vi) + 0.5 * Py @ Py, 0.5 * np.sum(vi**2)
        if A == 0:
            raise FitError(f"{method}: the area-effect variance reached exactly 0 during the iterations")
        new = A + score / info
        change = abs((new - A) / A)
        A = new
    if k >= max_iter and change >= precision:
        raise FitError(f"{method} estimation of the area-effect variance did not converge in {max_iter} iterations",
                       hint="use the direct estimates, another method, or fewer covariates")
    return max(A, 0.0), k


def fay_herriot(direct, vardir, X, method: str = "REML", max_iter: int = 100,
                precision: float = 1e-4) -> FayHerriot:
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
    A, iterations = _refvar(y, psi, X, method, max_iter, precision)
    vi, Q, beta = _weighted_fit(y, psi, X, A)
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
    return FayHerriot(method=method, eblup=eblup, mse=mse, refvar=A, beta=beta, beta_se=np.sqrt(np.diag(Q)),
                      gamma=gamma, synthetic=synthetic, iterations=iterations)
