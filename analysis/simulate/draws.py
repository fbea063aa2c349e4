"""Vectorised random draws shared by the population, needs and sample steps of the simulator."""

from __future__ import annotations

import numpy as np


def draw_index(rng, prob, n):
    """n independent draws of an index with probabilities ``prob`` (inverse-CDF, vectorised)."""
    return np.minimum(np.searchsorted(np.cumsum(prob), rng.random(n), side="right"), len(prob) - 1)


def by_household(values, hh, n):
    """Whether any member of each household has the person-level flag (hh = 0..n-1)."""
    return np.bincount(hh, weights=np.asarray(values, dtype=float), minlength=n) > 0


def draw_choice(rng, probs_by_row, labels):
    """One categorical draw per row from row-specific probabilities (n, k) -> labels."""
    u = rng.random(len(probs_by_row))[:, None]
    return np.asarray(labels)[(u > np.cumsum(probs_by_row, axis=1)).sum(axis=1).clip(0, len(labels) - 1)]
