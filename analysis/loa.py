"""Lists of analyses (IMPACT analysistools' "loa"): reading, checking against the data, and the data's values.

:func:`check_loa` checks every row of a list against the clean table and fills in analysistools'
defaults; the first problem raises :class:`analysis.errors.AnalysisError` naming the list's file, row
(as the file shows it, header = row 1) and column. :func:`select_multiple` finds a select_multiple
question's options (form, option columns or answers) and its respondents; :func:`as_text` and
:func:`coded` give values as analysistools prints them. :mod:`analysis.analyse` runs the checked list.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError

TYPES = ("mean", "median", "prop_select_one", "prop_select_multiple", "ratio", "total")
RESULT_COLUMNS = [
    "analysis_type",
    "analysis_var",
    "analysis_var_value",
    "group_var",
    "group_var_value",
    "stat",
    "stat_low",
    "stat_upp",
    "n",
    "n_total",
    "n_w",
    "n_w_total",
    "analysis_key",
]
EXTRA_COLUMNS = ["se", "df"]
CI_METHODS = ("wald", "logit")
DF_RULES = ("design", "domain", "z")
RATIO_COLUMNS = ("analysis_var_numerator", "analysis_var_denominator")
TRUE_TEXT = {"true", "t", "yes", "1", "1.0"}
FALSE_TEXT = {"false", "f", "no", "0", "0.0"}
SEPARATORS = ("/", ".")  # select_multiple option columns: <question>/<option> (Kobo) or <question>.<option>


# ---------------------------------------------------------------------------------------------------
# reading and checking the list


def read_loa(path: str | Path) -> pd.DataFrame:
    """A list of analyses from a CSV (UTF-8, with or without BOM) or the first sheet of an .xlsx, as text."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".xlsx", ".xls"):
            return pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise AnalysisError("list of analyses not found", file=str(path)) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise AnalysisError(
            f"cannot read the list of analyses ({error})",
            file=str(path),
            hint="a CSV or .xlsx with analysistools' columns",
        ) from None


def read_data(path: str | Path) -> pd.DataFrame:
    """A clean table from CSV, Parquet or .xlsx (first sheet); empty cells and "NA" are missing."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".xlsx", ".xls"):
            return pd.read_excel(path, engine="openpyxl")
        return pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    except FileNotFoundError:
        raise AnalysisError("data file not found", file=str(path)) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise AnalysisError(
            f"cannot read the data ({error})", file=str(path), hint="a clean table as CSV, Parquet or .xlsx"
        ) from None


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def _flag(text: str, default: bool) -> bool | None:
    low = text.lower()
    if low == "" or low == "na":
        return default
    if low in TRUE_TEXT:
        return True
    if low in FALSE_TEXT:
        return False
    return None


def check_loa(loa: pd.DataFrame, data: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """The list with every row checked against ``data`` and defaults filled in.

    Returns one row per analysis: ``row`` (as the file shows it, header = row 1), analysis_type,
    analysis_var, ``groups`` (tuple of columns), level, numerator, denominator, numerator_NA_to_0,
    filter_denominator_0, ci, df. The first problem raises :class:`AnalysisError` naming ``source``,
    the row and the column of the list.
    """
    columns = {str(c).strip(): c for c in loa.columns}
    records = loa.to_dict("records")
    if "analysis_type" not in columns:
        raise AnalysisError(
            "the list of analyses has no analysis_type column",
            file=source,
            column="analysis_type",
            hint="columns are analysistools': analysis_type, analysis_var, group_var, level, ...",
        )
    known = set(data.columns)

    def cell(i: int, name: str) -> str:
        return _text(records[i][columns[name]]) if name in columns else ""

    def fail(problem: str, i: int, column: str, hint: str | None = None):
        raise AnalysisError(problem, file=source, row=i + 2, column=column, hint=hint)

    def variable(i: int, column: str, allow_missing: bool = False) -> str:
        name = cell(i, column)
        if column not in columns:
            fail(f"a {cell(i, 'analysis_type')} needs a {column} column", i, column)
        if not name:
            fail(f"{column} is empty", i, column)
        if name not in known and not allow_missing:
            close = difflib.get_close_matches(name, [str(c) for c in data.columns], n=3)
            fail(
                f"variable '{name}' is not in the data",
                i,
                column,
                hint=f"did you mean {', '.join(close)}?"
                if close
                else "check the spelling against the data's header",
            )
        return name

    rows = []
    for i in range(len(loa)):
        kind = cell(i, "analysis_type")
        if kind not in TYPES:
            fail(f"unknown analysis type '{kind}'", i, "analysis_type", hint=f"use one of {', '.join(TYPES)}")
        groups = (
            tuple(part.strip() for part in cell(i, "group_var").split(",")) if cell(i, "group_var") else ()
        )
        for group in groups:
            if not group:
                fail("group_var has an empty name between commas", i, "group_var")
            if group not in known:
                close = difflib.get_close_matches(group, [str(c) for c in data.columns], n=3)
                fail(
                    f"group variable '{group}' is not in the data",
                    i,
                    "group_var",
                    hint=f"did you mean {', '.join(close)}?"
                    if close
                    else "group_var names columns of the data",
                )
        text = cell(i, "level")
        try:
            level = float(text) if text else 0.95
        except ValueError:
            level = np.nan
        if not 0 < level < 1:
            fail(
                f"level '{text}' is not a confidence level",
                i,
                "level",
                hint="a number between 0 and 1, e.g. 0.95",
            )
        numerator = denominator = ""
        if kind == "ratio":
            numerator, denominator = variable(i, RATIO_COLUMNS[0]), variable(i, RATIO_COLUMNS[1])
        else:
            name = variable(i, "analysis_var", allow_missing=kind == "prop_select_multiple")
        flags = {}
        for name_, default in (("numerator_NA_to_0", True), ("filter_denominator_0", True)):
            flags[name_] = _flag(cell(i, name_), default)
            if flags[name_] is None:
                fail(f"{name_} must be TRUE or FALSE, not '{cell(i, name_)}'", i, name_)
        ci = cell(i, "ci").lower() or "wald"
        if ci not in CI_METHODS:
            fail(f"unknown interval '{ci}'", i, "ci", hint=f"use one of {', '.join(CI_METHODS)}")
        rule = cell(i, "df").lower() or ("domain" if kind == "median" else "design")
        if rule not in DF_RULES:
            fail(
                f"unknown degrees-of-freedom rule '{rule}'", i, "df", hint=f"use one of {', '.join(DF_RULES)}"
            )
        rows.append(
            {
                "row": i + 2,
                "analysis_type": kind,
                "analysis_var": "" if kind == "ratio" else name,
                "groups": groups,
                "level": level,
                "numerator": numerator,
                "denominator": denominator,
                **flags,
                "ci": ci,
                "df": rule,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "row",
            "analysis_type",
            "analysis_var",
            "groups",
            "level",
            "numerator",
            "denominator",
            "numerator_NA_to_0",
            "filter_denominator_0",
            "ci",
            "df",
        ],
    )


# ---------------------------------------------------------------------------------------------------
# values as analysistools prints them


def as_text(values: pd.Series) -> pd.Series:
    """Values as R prints them in analysistools' tables (TRUE/FALSE, 3 not 3.0); missing stays missing."""
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "TRUE", False: "FALSE"}).astype(object)
    if pd.api.types.is_numeric_dtype(values):
        x = values.astype(float)
        whole = np.isfinite(x) & (x == np.round(x)) & (x.abs() < 1e15)
        out = pd.Series(
            np.where(whole, x.fillna(0).round().astype(np.int64).astype(str), x.map("{:.15g}".format)),
            index=values.index,
            dtype=object,
        )
        return out.where(x.notna(), None)
    return (
        values.astype(object)
        .map(
            lambda v: (
                None
                if pd.isna(v)
                else (
                    "TRUE"
                    if v is True
                    else "FALSE"
                    if v is False
                    else as_text(pd.Series([v])).iloc[0]
                    if isinstance(v, (int, float, np.number))
                    else str(v)
                )
            )
        )
        .astype(object)
    )


def coded(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes 0..k−1 of the distinct values in sorted order (numbers numerically; −1 = missing) and their
    text."""
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # numbers and text mixed: sort their text
        codes, uniques = pd.factorize(as_text(values), sort=True)
    return codes.astype(np.int64), as_text(pd.Series(uniques)).tolist()


def numeric_values(data: pd.DataFrame, name: str, row: int, column: str, source: str | None) -> np.ndarray:
    """The column as floats (TRUE = 1); text that is not a number is an error naming the list's row."""
    values = data[name]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").to_numpy(dtype=float, na_value=np.nan)
    text = values.astype(str).str.strip().str.lower()
    mapped = text.map({"true": "1", "false": "0"}).fillna(text)
    number = pd.to_numeric(mapped.where(values.notna()), errors="coerce")
    bad = values.notna() & number.isna() & (text != "")
    if bad.any():
        raise AnalysisError(
            f"variable '{name}' is not numeric (data row {int(np.flatnonzero(bad)[0]) + 2}: "
            f"'{values[bad].iloc[0]}')",
            file=source,
            row=row,
            column=column,
            hint="a mean, median, total or ratio needs numbers; use prop_select_one for answers",
        )
    return number.to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------------
# select_multiple options


def _form_options(form, question: str) -> list[str] | None:
    """Choice names of ``question`` when the form has it as a select_multiple, else None."""
    if form is None:
        return None
    hit = form.survey[(form.survey["name"] == question) & (form.survey["base_type"] == "select_multiple")]
    if hit.empty:
        return None
    return form.choices.loc[form.choices["list_name"] == hit.iloc[0]["list_name"], "name"].tolist()


def select_multiple(data: pd.DataFrame, question: str, form=None) -> tuple[pd.DataFrame, np.ndarray]:
    """0/1 columns of each option of ``question`` (NaN = not answered) and the respondents mask.

    Options: the form's choice list, else the ``<question>/<option>`` or ``<question>.<option>``
    columns in data order, else the answers of the space-separated ``question`` column. An option
    without a column is read from the answers. Respondents are the rows where the question column is
    not missing (without that column: rows with any option answered).
    """
    found = {}
    for sep in SEPARATORS:
        prefix = question + sep
        found = {str(c)[len(prefix) :]: c for c in data.columns if str(c).startswith(prefix)}
        if found:
            break
    answers = data[question] if question in data.columns else None
    options = _form_options(form, question)
    if options is None:
        options = list(found)
        if not options and answers is not None:
            options = sorted({token for text in answers.dropna().astype(str) for token in text.split()})
    chosen = {}
    for option in options:
        if option in found:
            chosen[option] = _as_zero_one(data[found[option]], found[option])
        elif answers is not None:
            tokens = answers.fillna("").astype(str).str.split()
            chosen[option] = np.where(
                answers.isna(), np.nan, tokens.map(lambda t, o=option: o in t).astype(float)
            )
    table = pd.DataFrame(chosen, index=data.index)
    respondents = answers.notna().to_numpy() if answers is not None else table.notna().any(axis=1).to_numpy()
    return table, respondents


def _as_zero_one(values: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        out = values.astype("float64").to_numpy(dtype=float, na_value=np.nan)
    else:
        text = values.astype(str).str.strip().str.lower().where(values.notna())
        out = text.map(
            lambda t: (
                np.nan
                if t is None or t == "" or t == "nan"
                else 1.0
                if t in TRUE_TEXT
                else 0.0
                if t in FALSE_TEXT
                else -1.0
            )
        ).to_numpy(dtype=float)
    if ((out != 0) & (out != 1) & ~np.isnan(out)).any():
        raise AnalysisError(
            "select_multiple option column holds values other than 0/1 or TRUE/FALSE", column=name
        )
    return out
