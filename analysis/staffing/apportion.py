"""Apportioning a fixed number of posts among teams: Hamilton (largest remainders) and the divisor methods
of Webster, Huntington–Hill and Jefferson, with a minimum per team (docs/sources.md §7)."""

from __future__ import annotations

import numpy as np

from analysis.errors import AnalysisError, ConfigError

METHODS = ("hamilton", "webster", "huntington_hill", "jefferson")


def _divisor_priority(weights: np.ndarray, counts: np.ndarray, method: str) -> np.ndarray:
    """Priority w / d(n) of the next seat for each unit; d(n) per docs/sources.md §7.

    Huntington–Hill's d(0) = 0 gives a unit with positive weight and no seat infinite priority
    (so every such unit is seated first); a unit with zero weight never has priority above 0.
    """
    if method == "jefferson":
        divisor = counts + 1.0
    elif method == "webster":
        divisor = counts + 0.5
    else:
        divisor = np.sqrt(counts * (counts + 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        priority = weights / divisor
    return np.where(weights > 0, priority, 0.0)


def _ranked_first(score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Column order per row: highest score first, ties to the larger weight, then the lower column."""
    column = np.broadcast_to(np.arange(score.shape[1]), score.shape)
    return np.lexsort((column, -weights, -score), axis=-1)


def _hamilton(weights: np.ndarray, seats: int, minimum: int) -> np.ndarray:
    """Largest remainder with a floor: units whose quota is below ``minimum`` get the minimum and the
    remaining seats are re-divided among the others (repeated until no quota is below the minimum),
    so a minimum that does not bind changes nothing."""
    units = weights.shape[1]
    fixed = np.zeros_like(weights, dtype=bool)
    for _ in range(units):
        free_seats = seats - minimum * fixed.sum(axis=1, keepdims=True)
        free_weight = np.where(fixed, 0.0, weights)
        total = free_weight.sum(axis=1, keepdims=True)
        quota = np.divide(free_seats * free_weight, total, out=np.zeros_like(weights), where=total > 0)
        newly_fixed = ~fixed & (quota < minimum)
        if not newly_fixed.any():
            break
        fixed |= newly_fixed
    base = np.where(fixed, minimum, np.floor(quota)).astype(int)
    left = seats - base.sum(axis=1, keepdims=True)
    remainder = np.where(fixed, -np.inf, quota - np.floor(quota))
    order = _ranked_first(remainder, weights)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.broadcast_to(np.arange(units), order.shape), axis=1)
    return base + (position < left).astype(int)


def apportion_many(weights: np.ndarray, seats: int, method: str = "hamilton", minimum: int = 0) -> np.ndarray:
    """Apportion ``seats`` for every row of ``weights`` (rows = replicates, columns = teams) at once.

    Ties are broken by the larger weight, then by the lower column index. Divisor methods give each
    unit ``minimum`` seats and continue their priority sequence from there (Huntington–Hill's
    d(n) = sqrt(n(n+1)) with minimum 1 is the US House rule); Hamilton fixes units whose quota is
    below the minimum at the minimum and divides the rest by largest remainder.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if method not in METHODS:
        raise ConfigError(f"unknown apportionment method '{method}'", hint=f"use one of {', '.join(METHODS)}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise AnalysisError(
            "apportionment weights must be finite and non-negative",
            hint="check the required staff per team for missing or negative values",
        )
    if int(seats) != seats or seats < 0 or int(minimum) != minimum or minimum < 0:
        raise ConfigError(f"seats ({seats}) and minimum ({minimum}) must be non-negative whole numbers")
    seats, minimum = int(seats), int(minimum)
    rows, units = weights.shape
    if minimum * units > seats:
        raise ConfigError(
            f"a minimum of {minimum} for each of {units} teams needs {minimum * units} posts, "
            f"but only {seats} are available",
            hint="lower the per-team minimum",
        )
    if seats > minimum * units and (weights.sum(axis=1) == 0).any():
        raise AnalysisError(
            "every apportionment weight is zero, so there is nothing to divide by",
            hint="check that the demand drivers are not all zero",
        )
    if method == "hamilton":
        return _hamilton(weights, seats, minimum)
    counts = np.full(weights.shape, minimum, dtype=int)
    every_row = np.arange(rows)
    for _ in range(seats - minimum * units):
        priority = _divisor_priority(weights, counts.astype(float), method)
        counts[every_row, _ranked_first(priority, weights)[:, 0]] += 1
    return counts


def apportion(
    weights: dict[str, float], seats: int, method: str = "hamilton", minimum: int = 0
) -> dict[str, int]:
    """Divide ``seats`` whole posts among teams in proportion to ``weights`` (docs/sources.md §7).

    ``method``: "hamilton" (largest remainder, default), "webster" (Sainte-Laguë, d(n) = n + 1/2),
    "huntington_hill" (d(n) = sqrt(n(n+1))) or "jefferson" (D'Hondt, d(n) = n + 1). Every team first
    receives ``minimum``. Ties go to the team with the larger weight, then to the team whose name sorts
    first, so the result never depends on dict order.
    """
    names = sorted(weights)
    counts = apportion_many(
        np.array([[weights[name] for name in names]], dtype=float), seats, method, minimum
    )
    allocation = dict(zip(names, counts[0].tolist()))
    return {name: allocation[name] for name in weights}
