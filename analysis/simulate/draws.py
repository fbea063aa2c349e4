"""Random draws shared by the simulator's steps.

Structure (household composition, places, the sample) is drawn from a seeded numpy generator. Answers
are drawn from **keyed uniforms**: a uniform number fixed by (seed, the unit's key, the item's name), made
by the splitmix64 mixer (Steele, Lea & Flood 2014). The same person or household therefore gets the same
draw in every wave, so an answer changes between waves only when the unit's circumstances or the
wave's rates change, and a rate that rises only adds units (monotone coupling).
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.special import ndtri

_GOLDEN, _MIX1, _MIX2 = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def keyed_uniform(seed: int, keys: np.ndarray, item: str, width: int | None = None) -> np.ndarray:
    """Uniform(0, 1) draws fixed by ``seed``, each unit's integer key and ``item``: shape (n,), or
    (n, width) for an item with ``width`` parts (e.g. the six K6 items)."""
    salt = _splitmix(
        np.array([(int(seed) & 0xFFFFFFFF) << 32 | zlib.crc32(item.encode("utf-8"))], dtype=np.uint64)
    )
    keys = np.asarray(keys, dtype=np.uint64)
    if width is not None:
        keys = keys[:, None] * np.uint64(1 << 8) + np.arange(width, dtype=np.uint64)[None, :]
    bits = _splitmix(_splitmix(keys ^ salt) + salt)
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def keyed_normal(seed: int, keys: np.ndarray, item: str, width: int | None = None) -> np.ndarray:
    """Standard normal draws fixed like :func:`keyed_uniform` (inverse normal CDF of the uniform)."""
    return ndtri(keyed_uniform(seed, keys, item, width))


def index_of(u: np.ndarray, prob) -> np.ndarray:
    """The category index each uniform in ``u`` falls into, for probabilities ``prob`` (inverse CDF)."""
    return np.minimum(np.searchsorted(np.cumsum(prob), u, side="right"), len(prob) - 1)


def draw_index(rng, prob, n):
    """n independent draws of an index with probabilities ``prob`` (inverse-CDF, vectorised)."""
    return index_of(rng.random(n), prob)


def pick(u: np.ndarray, probs_by_row, labels) -> np.ndarray:
    """One category per row from row-specific probabilities (n, k) and that row's uniform -> labels."""
    return np.asarray(labels)[
        (u[:, None] > np.cumsum(probs_by_row, axis=1)).sum(axis=1).clip(0, len(labels) - 1)
    ]


def draw_choice(rng, probs_by_row, labels):
    """One categorical draw per row from row-specific probabilities (n, k) -> labels."""
    return pick(rng.random(len(probs_by_row)), probs_by_row, labels)


def by_household(values, hh, n):
    """Whether any member of each household has the person-level flag (hh = 0..n-1)."""
    return np.bincount(hh, weights=np.asarray(values, dtype=float), minlength=n) > 0


def unit_keys(ids) -> np.ndarray:
    """Integer keys of household ids ``h0000123`` (-> 123) and person ids ``h0000123-02`` (-> 12302)."""
    text = np.asarray(ids).astype(str)
    parts = np.char.partition(np.char.lstrip(text, "h"), "-")
    keys = parts[:, 0].astype(np.int64)
    member = parts[:, 2]
    has_member = member != ""
    keys = np.where(has_member, keys * 100 + np.where(has_member, member, "0").astype(np.int64), keys)
    return keys
