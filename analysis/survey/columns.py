"""Analysis columns over domains: the layout every estimator and variance works on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from analysis.survey.groups import groupsum

ROW_BLOCK = 1 << 16  # rows per block of an in-place per-row operation


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

    def _table(self, values: np.ndarray) -> np.ndarray:
        """Per-column values (D·v) as a D × v table, NaN and infinities read as 0."""
        return np.nan_to_num(values.reshape(self.D, -1), nan=0.0, posinf=0.0, neginf=0.0)

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """For each row and variable, the value of the row's own column (n×v, or 1×v when there is
        one domain); NaN read as 0."""
        table = self._table(values)
        return table if self.D == 1 else table[self.dom]

    def per_row_times(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``per_row(values) · x`` as a new n×v array (per_row's own when it is full size: no second one)."""
        spread = self.per_row(values)
        return np.multiply(spread, x, out=spread) if spread.shape == x.shape else spread * x

    def divide_per_row(self, x: np.ndarray, values: np.ndarray) -> np.ndarray:
        """x (n×v) divided in place by ``per_row(values)``, a block of rows at a time (no n×v temporary)."""
        table = self._table(values)
        if self.D == 1:
            return np.divide(x, table, out=x)
        for start in range(0, len(x), ROW_BLOCK):
            block = slice(start, start + ROW_BLOCK)
            np.divide(x[block], table[self.dom[block]], out=x[block])
        return x

    def by_domain(self, matrix: sparse.spmatrix) -> sparse.csr_matrix:
        """A sums matrix (m × n) split by domain: (m·D) × n, row a·D + d summing domain d's rows, so
        its product with x (n×v) reshaped to m × (D·v) gives every column's sums."""
        if self.D == 1:
            return sparse.csr_matrix(matrix)
        coo = sparse.coo_matrix(matrix)
        m, n = coo.shape
        return sparse.csr_matrix(
            (coo.data, (coo.row * self.D + self.dom[coo.col], coo.col)), shape=(m * self.D, n)
        )
