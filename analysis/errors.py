"""Errors a user can cause, with the file, row and column that caused them.

Owns: the exception types every module raises for bad input, and how they print as one line.

The CLI catches :class:`AnalysisError` and prints ``str(error)`` as one line, exiting non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """A problem in the user's input, reported as one readable line.

    Parameters name where the problem is (any may be omitted) and what to do about it.
    Rows are 1-based as a spreadsheet shows them (header = row 1) when ``row`` comes from a file.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | str | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class DesignError(AnalysisError):
    """An invalid survey design or estimator call (bad weights, lonely PSU, unknown column)."""


class IngestError(AnalysisError):
    """A raw export that cannot be read or does not match the instrument."""


class ConfigError(AnalysisError):
    """A missing or invalid value in a configuration file (assumptions, need definitions)."""
