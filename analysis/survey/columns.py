"""Analysis columns over domains: the layout every estimator and variance works on."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from analysis.survey.groups import groupsum


@dataclass(frozen=True)
class Columns:
    """Analysis columns over domains, kept as n × v arrays plus each row's domain.

    Column (d, j), numbered d·v + j, is variable j on the rows of domain d: a row belongs to one
    domain, so group sums by (group, domain) give every column at once and no n × (domains·v)
    matrix is ever formed. ``ok`` is False outside every domain and where a value is missing.
    """

    a: np.ndarray  # n×v numerators (0 where not ok)
    b: np.ndarray  # n×v denominators: 1 for means and totals (0 where not ok)
    ok: np.ndarray  # n×v bool
    dom: np.ndarray  # n, domain code 0..D-1
    D: int

    @classmethod
    def whole(cls, n: int) -> Columns:
        one = np.ones((n, 1))
        return cls(one, one, np.ones((n, 1), dtype=bool), np.zeros(n, dtype=np.int64), 1)

    def gsum(self, x: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
        """Sums of x (n×v) within groups ``codes`` for every column: size × (D·v)."""
        key = codes if self.D == 1 else codes * self.D + self.dom
        return groupsum(x, key, size * self.D).reshape(size, self.D * x.shape[1])

    def total(self, x: np.ndarray) -> np.ndarray:
        """Column sums of x over each column's domain: D·v."""
        if self.D == 1:
            return x.sum(axis=0)
        return groupsum(x, self.dom, self.D).ravel()

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """For each row and variable, the value of the row's own column (n×v, or 1×v when there is
        one domain); NaN read as 0."""
        table = np.nan_to_num(values.reshape(self.D, -1), nan=0.0, posinf=0.0, neginf=0.0)
        return table if self.D == 1 else table[self.dom]

    @cached_property
    def _domain_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows sorted by domain (in row order within each) and where each domain's rows start."""
        order = np.argsort(self.dom, kind="stable")
        return order, np.searchsorted(self.dom[order], np.arange(self.D + 1))

    def dense(self, x: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Columns lo..hi-1 (all by default) of x spread into its columns: n × (hi − lo), zero
        outside each column's domain. Each domain's rows are copied once, so a chunk costs its own
        size, not n × v."""
        n, v = x.shape
        hi = self.D * v if hi is None else hi
        out = np.zeros((n, hi - lo))
        if hi <= lo:
            return out
        order, start = self._domain_rows
        for d in range(lo // v, (hi - 1) // v + 1):
            first, last = max(lo, d * v), min(hi, (d + 1) * v)  # this domain's columns in the chunk
            rows = order[start[d] : start[d + 1]]
            if len(rows):
                out[np.ix_(rows, np.arange(first - lo, last - lo))] = x[
                    np.ix_(rows, np.arange(first - d * v, last - d * v))
                ]
        return out
