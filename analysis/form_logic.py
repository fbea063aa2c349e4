"""XLSForm `relevant` / `constraint` / `calculation` expressions, evaluated on whole DataFrame columns.

An expression is parsed once into a small tree of tuples and then evaluated column-wise with pandas, so
a 100,000-row export costs one vectorised pass per expression. User text is never handed to Python's
``eval``. Supported (ODK "Form Operators and Functions", docs/sources.md §5.3): ``${field}``, ``.``
(the current field in a constraint), numbers and quoted strings, ``or and = != < <= > >= + - * div mod``,
unary minus, and the functions ``not selected count-selected string-length if coalesce true false
number int string concat contains starts-with ends-with regex round abs min max``.

Values follow XPath 1.0 as ODK does: a missing answer is the empty string; relational operators compare
numbers (the empty string is NaN, so ``${age} >= 60`` is false when age is blank); ``=`` compares
numbers when either side is a number and strings otherwise.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

from analysis.distinct import each_distinct
from analysis.errors import AnalysisError


class ExpressionError(AnalysisError):
    """An XLSForm expression that cannot be parsed or refers to something unknown."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<ref>\$\{\s*(?P<refname>[^}\s]+)\s*\})
    | (?P<num>\d+\.\d*|\.\d+|\d+)
    | (?P<str>'[^']*'|"[^"]*")
    | (?P<op>!=|<=|>=|=|<|>|\+|-|\*|\(|\)|,)
    | (?P<name>[A-Za-z_][A-Za-z0-9_:.\-]*)
    | (?P<dot>\.)
    )""",
    re.VERBOSE,
)

_FUNCTIONS = {
    "not": (1, 1),
    "selected": (2, 2),
    "count-selected": (1, 1),
    "string-length": (1, 1),
    "if": (3, 3),
    "coalesce": (2, 2),
    "true": (0, 0),
    "false": (0, 0),
    "number": (1, 1),
    "int": (1, 1),
    "string": (1, 1),
    "concat": (1, 99),
    "contains": (2, 2),
    "starts-with": (2, 2),
    "ends-with": (2, 2),
    "regex": (2, 2),
    "round": (1, 2),
    "abs": (1, 1),
    "min": (1, 99),
    "max": (1, 99),
}
_WORD_OPERATORS = {"and", "or", "div", "mod"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, text) tokens; raise on any character the grammar does not know."""
    tokens, pos, text = [], 0, text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"cannot read expression {text!r} at character {pos + 1}")
        kind = match.lastgroup
        if kind == "ref":
            tokens.append(("ref", match.group("refname")))
        elif kind == "name" and match.group("name") in _WORD_OPERATORS:
            tokens.append(("op", match.group("name")))
        else:
            tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser for the XPath subset, precedence lowest first: or, and, equality,
    relational, additive, multiplicative, unary minus, primary."""

    _LEVELS = (("or",), ("and",), ("=", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "div", "mod"))

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def parse(self) -> tuple:
        if not self.tokens:
            raise ExpressionError("empty expression")
        tree = self._binary(0)
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.pos][1]!r} in expression {self.text!r}")
        return tree

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _expect(self, value: str) -> None:
        token = self._peek()
        if token is None or token[1] != value:
            raise ExpressionError(f"expected {value!r} in expression {self.text!r}")
        self.pos += 1

    def _binary(self, level: int) -> tuple:
        if level == len(self._LEVELS):
            return self._unary()
        left = self._binary(level + 1)
        while (token := self._peek()) is not None and token[0] == "op" and token[1] in self._LEVELS[level]:
            self.pos += 1
            left = ("op", token[1], left, self._binary(level + 1))
        return left

    def _unary(self) -> tuple:
        token = self._peek()
        if token == ("op", "-"):
            self.pos += 1
            return ("neg", self._unary())
        return self._primary()

    def _primary(self) -> tuple:
        token = self._peek()
        if token is None:
            raise ExpressionError(f"expression {self.text!r} ends too early")
        kind, value = token
        self.pos += 1
        if kind == "num":
            return ("num", float(value))
        if kind == "str":
            return ("str", value[1:-1])
        if kind == "ref":
            return ("ref", value)
        if kind == "dot":
            return ("cur",)
        if kind == "op" and value == "(":
            inner = self._binary(0)
            self._expect(")")
            return inner
        if kind == "name":
            if value not in _FUNCTIONS:
                raise ExpressionError(
                    f"unknown function {value!r} in expression {self.text!r}",
                    hint="supported: " + ", ".join(sorted(_FUNCTIONS)),
                )
            self._expect("(")
            args = []
            if self._peek() != ("op", ")"):
                args.append(self._binary(0))
                while self._peek() == ("op", ","):
                    self.pos += 1
                    args.append(self._binary(0))
            self._expect(")")
            low, high = _FUNCTIONS[value]
            if not low <= len(args) <= high:
                raise ExpressionError(
                    f"{value}() takes {low}–{high} arguments, got {len(args)} in expression {self.text!r}"
                )
            return ("call", value, tuple(args))
        raise ExpressionError(f"unexpected {value!r} in expression {self.text!r}")


@lru_cache(maxsize=4096)
def parse(text: str) -> tuple:
    """Parse an XLSForm expression into a tree of tuples (cached: each distinct text is parsed once)."""
    return _Parser(str(text)).parse()


def references(text: str) -> set[str]:
    """Field names an expression refers to with ``${...}``."""
    found: set[str] = set()

    def walk(node: tuple) -> None:
        if node[0] == "ref":
            found.add(node[1])
        for child in node[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                walk(child)
            elif isinstance(child, tuple):
                for item in child:
                    walk(item)

    walk(parse(text))
    return found


# ----- values -----------------------------------------------------------------------------------------
# Every node evaluates to a pandas Series aligned to the frame's index: float for numbers (NaN = empty),
# bool for booleans, pandas string dtype for strings ('' = empty).


def _as_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    return pd.to_numeric(values.astype("string").str.strip(), errors="coerce").astype(float)


def _as_string(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "true", False: "false"}).astype(object)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype(float)
        whole = numbers.notna() & (numbers == np.round(numbers))
        text = numbers.astype(object).where(~whole, numbers.round().astype("Int64").astype(object))
        return text.map(lambda v: "" if pd.isna(v) else str(v)).astype(object)
    return values.astype("string").fillna("")


def _as_bool(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).astype(bool)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype(float)
        return (numbers.notna() & (numbers != 0)).astype(bool)
    return (_as_string(values) != "").astype(bool)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise ExpressionError(f"expression refers to ${{{name}}}, which is not in the data", column=name)
    return frame[name]


def _compare(op: str, left: pd.Series, right: pd.Series) -> pd.Series:
    if op in ("=", "!="):
        if pd.api.types.is_bool_dtype(left) or pd.api.types.is_bool_dtype(right):
            equal = _as_bool(left) == _as_bool(right)
        elif _is_numeric(left) or _is_numeric(right):
            a, b = _as_number(left), _as_number(right)
            equal = a == b
            both_blank = a.isna() & b.isna()
            if both_blank.any():  # two non-numbers: compare them as text
                equal |= both_blank & (_as_string(left[both_blank]) == _as_string(right[both_blank]))
        else:
            equal = _as_string(left) == _as_string(right)
        return (equal if op == "=" else ~equal).astype(bool)
    a, b = _as_number(left), _as_number(right)
    result = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    return result.fillna(False).astype(bool)


def _constant(frame: pd.DataFrame, value) -> pd.Series:
    dtype = bool if isinstance(value, bool) else (float if isinstance(value, float) else "string")
    return pd.Series(value, index=frame.index, dtype=dtype)


def _padded(answer) -> str:
    """ " a b " for the answer "a  b": options between single spaces."""
    return " " + " ".join(str(answer).split()) + " "


def _split_selected(values: pd.Series) -> pd.Series:
    """Each answer :func:`_padded`, each distinct answer split once."""
    padded = each_distinct(
        _as_string(values), lambda distinct: np.array([_padded(u) for u in distinct], dtype=object), "  "
    )
    return pd.Series(padded, index=values.index, dtype=object)


def _call(name: str, args: list[pd.Series], frame: pd.DataFrame) -> pd.Series:
    if name == "true":
        return _constant(frame, True)
    if name == "false":
        return _constant(frame, False)
    if name == "not":
        return ~_as_bool(args[0])
    if name == "selected":
        option = _as_string(args[1]).str.strip()
        if option.nunique() > 1:
            padded = _split_selected(args[0])
            return pd.Series([f" {o} " in p for p, o in zip(padded, option)], index=frame.index, dtype=bool)
        needle = f" {option.iloc[0] if len(option) else ''} "  # one option: sought once per distinct answer
        return pd.Series(
            each_distinct(
                _as_string(args[0]),
                lambda distinct: np.array([needle in _padded(u) for u in distinct], dtype=bool),
                needle in "  ",
            ),
            index=frame.index,
            dtype=bool,
        )
    if name == "count-selected":
        return _as_string(args[0]).str.split().str.len().fillna(0).astype(float)
    if name == "string-length":
        return _as_string(args[0]).str.len().astype(float)
    if name == "if":
        condition = _as_bool(args[0])
        if _is_numeric(args[1]) and _is_numeric(args[2]):
            return pd.Series(np.where(condition, args[1], args[2]), index=frame.index, dtype=float)
        return pd.Series(
            np.where(condition, _as_string(args[1]), _as_string(args[2])), index=frame.index, dtype=object
        )
    if name == "coalesce":
        first, second = _as_string(args[0]), _as_string(args[1])
        return first.where(first != "", second)
    if name == "number":
        return _as_number(args[0])
    if name == "int":
        return np.trunc(_as_number(args[0]))
    if name == "round":
        digits = 0 if len(args) == 1 else int(_as_number(args[1]).iloc[0])
        return _as_number(args[0]).round(digits)
    if name == "abs":
        return _as_number(args[0]).abs()
    if name in ("min", "max"):
        stacked = pd.concat([_as_number(a) for a in args], axis=1)
        return stacked.min(axis=1, skipna=False) if name == "min" else stacked.max(axis=1, skipna=False)
    if name == "string":
        return _as_string(args[0])
    if name == "concat":
        out = _as_string(args[0])
        for arg in args[1:]:
            out = out + _as_string(arg)
        return out
    text, pattern = _as_string(args[0]), _as_string(args[1])
    if pattern.nunique() > 1:
        raise ExpressionError(f"{name}() needs a constant second argument")
    needle = pattern.iloc[0] if len(pattern) else ""
    if name == "contains":
        return text.str.contains(needle, regex=False).astype(bool)
    if name == "starts-with":
        return text.str.startswith(needle).astype(bool)
    if name == "ends-with":
        return text.str.endswith(needle).astype(bool)
    try:  # regex; checked by Python first (pyarrow-backed strings raise their own error types)
        re.compile(needle)
        return text.str.contains(needle, regex=True).fillna(False).astype(bool)
    except re.error as error:
        raise ExpressionError(
            f"regex() pattern {needle!r} is not a valid regular expression ({error})"
        ) from None


def _evaluate(node: tuple, frame: pd.DataFrame, current: pd.Series | None) -> pd.Series:
    kind = node[0]
    if kind == "num":
        return _constant(frame, node[1])
    if kind == "str":
        return _constant(frame, node[1])
    if kind == "ref":
        return _column(frame, node[1])
    if kind == "cur":
        if current is None:
            raise ExpressionError("'.' (the current field) is only allowed in a constraint")
        return current
    if kind == "neg":
        return -_as_number(_evaluate(node[1], frame, current))
    if kind == "call":
        return _call(node[1], [_evaluate(arg, frame, current) for arg in node[2]], frame)
    op, left, right = node[1], _evaluate(node[2], frame, current), _evaluate(node[3], frame, current)
    if op == "and":
        return _as_bool(left) & _as_bool(right)
    if op == "or":
        return _as_bool(left) | _as_bool(right)
    if op in ("=", "!=", "<", "<=", ">", ">="):
        return _compare(op, left, right)
    a, b = _as_number(left), _as_number(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "div":
        return a / b.replace(0, np.nan)
    return np.fmod(a, b.replace(0, np.nan))  # mod, sign of the dividend as in XPath


def evaluate(text: str, frame: pd.DataFrame, current: pd.Series | None = None) -> pd.Series:
    """Evaluate an XLSForm expression on every row of ``frame``; return a Series aligned to its index.

    ``frame`` holds one column per bare field name; ``current`` is the value of ``.`` (a constraint's own
    field). Numeric columns should be numeric dtype and select columns strings of choice names.
    """
    result = _evaluate(parse(text), frame, current)
    if not isinstance(result, pd.Series):
        result = pd.Series(result, index=frame.index)
    return result


def evaluate_bool(text: str, frame: pd.DataFrame, current: pd.Series | None = None) -> pd.Series:
    """Evaluate an expression as a condition (XPath ``boolean()``): True/False per row, never missing."""
    return _as_bool(evaluate(text, frame, current))
