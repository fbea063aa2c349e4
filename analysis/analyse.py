"""Lists of analyses run on a survey design: IMPACT analysistools' "loa" in, one long results table out.

A list of analyses has one row per indicator × grouping, with analysistools' columns: ``analysis_type``
(``mean``, ``median``, ``prop_select_one``, ``prop_select_multiple``, ``ratio``, and this project's
``total``), ``analysis_var``, ``group_var`` (one grouping per row; "admin1, admin2" groups by both at
once), ``level``, and for ratios ``analysis_var_numerator``, ``analysis_var_denominator``,
``numerator_NA_to_0`` and ``filter_denominator_0``. Two optional columns of this project choose the
interval: ``ci`` (``wald`` or ``logit``) and ``df`` (``design``, ``domain`` or ``z``). Other columns
are ignored. The results have analysistools' columns, ``analysis_key`` written as analysistools
writes it, then ``se`` and ``df``.

Conventions (analysistools 0.0.0.903 on srvyr 1.3 and R survey 4.x), the defaults of every list:

- A row whose analysed variable is missing is out of the analysis; it keeps its place in the design
  (srvyr's ``filter`` keeps each stratum's PSU count, i.e. domain estimation). A group left with no
  rows keeps its line, with n = 0 and NaN statistics (``correct_nan_total_is_0``).
- Intervals are Wald, estimate ± t·SE, for means, totals, ratios and proportions alike (srvyr's
  ``survey_mean(vartype = "ci")`` and ``survey_prop(proportion = FALSE)``), so a proportion's
  interval can leave [0, 1]. t has the design's degrees of freedom over the rows analysed (PSUs −
  strata among rows with a value, all groups together: srvyr's ``degf`` of the filtered design).
  Medians use ``svyquantile(qrule = "school")`` with Woodruff's interval and the group's own df
  (srvyr passes no df, so svyquantile takes the group's).
- ``prop_select_one``: the share of each answer among the group's rows with an answer, one line per
  answer seen in the group, plus a line with ``analysis_var_value`` missing that counts the rows
  without an answer (n only).
- ``prop_select_multiple``: the share selecting each option among the question's respondents (rows
  where the question is not missing); n counts the rows selecting it, n_total the respondents, and a
  line "NA" counts the non-respondents. Options come from the form when one is given, else from the
  ``<question>/<option>`` (or ``<question>.<option>``) columns, else from the answers themselves.
- ``ratio``: Σw·numerator / Σw·denominator over rows with a denominator. ``numerator_NA_to_0``
  (default TRUE) counts a missing numerator as 0, otherwise such rows are left out;
  ``filter_denominator_0`` (default TRUE) leaves out rows whose denominator is 0. (analysistools
  0.0.0.903 loses the denominator filters when ``numerator_NA_to_0`` is FALSE; this module does what
  its documentation says.)
- n counts rows, n_w sums their weights; a missing group value is the group "NA".

R ``survey``'s own defaults differ, and the estimators of :mod:`analysis.survey` keep them: ``confint``
of svymean/svytotal/svyratio uses the normal quantile, ``svyciprop`` the logit interval with the
domain's df, ``svyquantile`` ``qrule = "math"``. A list asks for them with ``df = z``, ``ci = logit``
and ``df = domain``.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError
from analysis.survey import Design

TYPES = ("mean", "median", "prop_select_one", "prop_select_multiple", "ratio", "total")
RESULT_COLUMNS = ["analysis_type", "analysis_var", "analysis_var_value", "group_var", "group_var_value", "stat",
                  "stat_low", "stat_upp", "n", "n_total", "n_w", "n_w_total", "analysis_key"]
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
            return pd.read_excel(path, dtype=str, keep_default_na=False)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise AnalysisError("list of analyses not found", file=str(path)) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise AnalysisError(f"cannot read the list of analyses ({error})", file=str(path),
                            hint="a CSV or .xlsx with analysistools' columns") from None


def read_data(path: str | Path) -> pd.DataFrame:
    """A clean table from CSV, Parquet or .xlsx (first sheet); empty cells and "NA" are missing."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".xlsx", ".xls"):
            return pd.read_excel(path)
        return pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    except FileNotFoundError:
        raise AnalysisError("data file not found", file=str(path)) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise AnalysisError(f"cannot read the data ({error})", file=str(path),
                            hint="a clean table as CSV, Parquet or .xlsx") from None


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
    if "analysis_type" not in columns:
        raise AnalysisError("the list of analyses has no analysis_type column", file=source, column="analysis_type",
                            hint="columns are analysistools': analysis_type, analysis_var, group_var, level, ...")
    known = set(data.columns)

    def cell(i: int, name: str) -> str:
        return _text(loa.iloc[i][columns[name]]) if name in columns else ""

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
            fail(f"variable '{name}' is not in the data", i, column,
                 hint=f"did you mean {', '.join(close)}?" if close else "check the spelling against the data's header")
        return name

    rows = []
    for i in range(len(loa)):
        kind = cell(i, "analysis_type")
        if kind not in TYPES:
            fail(f"unknown analysis type '{kind}'", i, "analysis_type", hint=f"use one of {', '.join(TYPES)}")
        groups = tuple(part.strip() for part in cell(i, "group_var").split(",")) if cell(i, "group_var") else ()
        for group in groups:
            if not group:
                fail("group_var has an empty name between commas", i, "group_var")
            if group not in known:
                close = difflib.get_close_matches(group, [str(c) for c in data.columns], n=3)
                fail(f"group variable '{group}' is not in the data", i, "group_var",
                     hint=f"did you mean {', '.join(close)}?" if close else "group_var names columns of the data")
        text = cell(i, "level")
        try:
            level = float(text) if text else 0.95
        except ValueError:
            level = np.nan
        if not 0 < level < 1:
            fail(f"level '{text}' is not a confidence level", i, "level", hint="a number between 0 and 1, e.g. 0.95")
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
            fail(f"unknown degrees-of-freedom rule '{rule}'", i, "df", hint=f"use one of {', '.join(DF_RULES)}")
        rows.append({"row": i + 2, "analysis_type": kind, "analysis_var": "" if kind == "ratio" else name,
                     "groups": groups, "level": level, "numerator": numerator, "denominator": denominator,
                     **flags, "ci": ci, "df": rule})
    return pd.DataFrame(rows, columns=["row", "analysis_type", "analysis_var", "groups", "level", "numerator",
                                       "denominator", "numerator_NA_to_0", "filter_denominator_0", "ci", "df"])


# ---------------------------------------------------------------------------------------------------
# values as analysistools prints them


def as_text(values: pd.Series) -> pd.Series:
    """Values as R prints them in analysistools' tables (TRUE/FALSE, 3 not 3.0); missing stays missing."""
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "TRUE", False: "FALSE"}).astype(object)
    if pd.api.types.is_numeric_dtype(values):
        x = values.astype(float)
        whole = np.isfinite(x) & (x == np.round(x)) & (x.abs() < 1e15)
        out = pd.Series(np.where(whole, x.fillna(0).round().astype(np.int64).astype(str), x.map("{:.15g}".format)),
                        index=values.index, dtype=object)
        return out.where(x.notna(), None)
    return values.astype(object).map(lambda v: None if pd.isna(v) else (
        "TRUE" if v is True else "FALSE" if v is False else as_text(pd.Series([v])).iloc[0]
        if isinstance(v, (int, float, np.number)) else str(v))).astype(object)


def _numeric(data: pd.DataFrame, name: str, row: int, column: str, source: str | None) -> np.ndarray:
    """The column as floats (TRUE = 1); text that is not a number is an error naming the list's row."""
    values = data[name]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").to_numpy(dtype=float, na_value=np.nan)
    text = values.astype(str).str.strip().str.lower()
    mapped = text.map({"true": "1", "false": "0"}).fillna(text)
    number = pd.to_numeric(mapped.where(values.notna()), errors="coerce")
    bad = values.notna() & number.isna() & (text != "")
    if bad.any():
        raise AnalysisError(f"variable '{name}' is not numeric (data row {int(np.flatnonzero(bad)[0]) + 2}: "
                            f"'{values[bad].iloc[0]}')", file=source, row=row, column=column,
                            hint="a mean, median, total or ratio needs numbers; use prop_select_one for answers")
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
        found = {str(c)[len(prefix):]: c for c in data.columns if str(c).startswith(prefix)}
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
            chosen[option] = np.where(answers.isna(), np.nan, tokens.map(lambda t, o=option: o in t).astype(float))
    table = pd.DataFrame(chosen, index=data.index)
    respondents = answers.notna().to_numpy() if answers is not None else table.notna().any(axis=1).to_numpy()
    return table, respondents


def _as_zero_one(values: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        out = values.astype("float64").to_numpy(dtype=float, na_value=np.nan)
    else:
        text = values.astype(str).str.strip().str.lower().where(values.notna())
        out = text.map(lambda t: np.nan if t is None or t == "" or t == "nan" else
                       1.0 if t in TRUE_TEXT else 0.0 if t in FALSE_TEXT else -1.0).to_numpy(dtype=float)
    if ((out != 0) & (out != 1) & ~np.isnan(out)).any():
        raise AnalysisError("select_multiple option column holds values other than 0/1 or TRUE/FALSE", column=name)
    return out


# ---------------------------------------------------------------------------------------------------
# planning: every analysis becomes columns of one working table


@dataclass(frozen=True)
class _Item:
    """One line family of a list row: the estimate of ``column`` (over ``denominator`` for a ratio)."""

    loa: int  # position in the checked list
    value: object  # analysis_var_value (None = missing)
    order: int  # position of the value within the list row
    column: str
    denominator: str | None = None
    hits: str | None = None  # column whose 1s n counts (select questions); None = the rows used


class _Plan:
    """Working columns (named ``loa:<k>:<what>``) and the items that estimate them."""

    def __init__(self, data: pd.DataFrame, form, source: str | None):
        self.data, self.form, self.source = data, form, source
        self.columns: dict[str, np.ndarray] = {}
        self.items: list[_Item] = []
        self.missing: dict[int, str] = {}  # list position -> column marking the rows without an answer
        self._cache: dict[tuple, str] = {}
        self._content: dict[bytes, str] = {}

    def add(self, key: tuple, label: str, make, share: bool = False) -> str:
        """The working column for ``key`` (built once by ``make()``); ``share`` reuses equal content."""
        if key in self._cache:
            return self._cache[key]
        values = np.asarray(make(), dtype=float)
        name = None
        if share:
            name = self._content.get(values.tobytes())
        if name is None:
            name = f"loa:{len(self.columns)}:{label}"
            self.columns[name] = values
            if share:
                self._content[values.tobytes()] = name
        self._cache[key] = name
        return name

    def plan(self, i: int, spec) -> None:
        kind, var = spec.analysis_type, spec.analysis_var
        if kind in ("mean", "median", "total"):
            column = self.add(("num", var), var, lambda: _numeric(self.data, var, spec.row, "analysis_var", self.source))
            self.items.append(_Item(i, None, 0, column))
        elif kind == "ratio":
            self._ratio(i, spec)
        elif kind == "prop_select_one":
            values = as_text(self.data[var])
            levels = _levels(self.data[var])
            for order, level in enumerate(levels):
                column = self.add(("level", var, level), f"{var}={level}",
                                  lambda lv=level: np.where(values.isna(), np.nan, (values == lv).astype(float)))
                self.items.append(_Item(i, level, order, column, hits=column))
            self.missing[i] = self.add(("missing", var), f"{var}=NA", lambda: values.isna().astype(float))
        else:
            options, respondents = self._options(spec)
            for order, option in enumerate(options.columns):
                column = self.add(("option", var, option), f"{var}/{option}",
                                  lambda o=option: np.where(respondents, options[o].to_numpy(), np.nan))
                self.items.append(_Item(i, option, order, column, hits=column))
            self.missing[i] = self.add(("unanswered", var), f"{var}=NA", lambda: (~respondents).astype(float))

    def _options(self, spec):
        key = ("options", spec.analysis_var)
        if key not in self._cache:
            options, respondents = select_multiple(self.data, spec.analysis_var, self.form)
            if options.empty:
                raise AnalysisError(f"no options found for select_multiple '{spec.analysis_var}'", file=self.source,
                                    row=spec.row, column="analysis_var",
                                    hint="give the form (--form), or columns named <question>/<option>")
            self._cache[key] = (options, respondents)
        return self._cache[key]

    def _ratio(self, i: int, spec) -> None:
        num = _numeric(self.data, spec.numerator, spec.row, RATIO_COLUMNS[0], self.source)
        den = _numeric(self.data, spec.denominator, spec.row, RATIO_COLUMNS[1], self.source)
        if spec.numerator_NA_to_0:
            num = np.nan_to_num(num, nan=0.0)
        keep = ~np.isnan(den) & ~np.isnan(num)
        if spec.filter_denominator_0:
            keep &= den != 0
        flags = (spec.numerator_NA_to_0, spec.filter_denominator_0)
        numerator = self.add(("ratio", spec.numerator, spec.denominator, flags), spec.numerator,
                             lambda: np.where(keep, num, np.nan))
        denominator = self.add(("ratio-den", spec.numerator, spec.denominator, flags), spec.denominator,
                               lambda: np.where(keep, den, np.nan), share=True)
        self.items.append(_Item(i, "NA %/% NA", 0, numerator, denominator))


def _levels(values: pd.Series) -> list[str]:
    """Answers seen, in sorted order (numbers numerically), as text."""
    seen = pd.Series(values.dropna().unique())
    if pd.api.types.is_numeric_dtype(seen) or pd.api.types.is_bool_dtype(seen):
        seen = seen.sort_values()
        return as_text(seen).tolist()
    return sorted(as_text(seen).tolist())


# ---------------------------------------------------------------------------------------------------
# the calls to the survey core, all here


ESTIMATORS = {"mean": "mean", "total": "total", "prop_select_one": "mean", "prop_select_multiple": "mean",
              "ratio": "ratio", "median": "median"}


def _core(design, estimator: str, columns: list[str], denominator: str | None, by: list[str],
          level: float) -> pd.DataFrame:
    """Estimate, se, ci_low, ci_high, df (the domain's) and n per group and column (``variable``)."""
    by = by or None
    if estimator == "mean":
        return design.mean(columns, by=by, na_rm=True, level=level)
    if estimator == "total":
        return design.total(columns, by=by, na_rm=True, level=level)
    if estimator == "ratio":
        out = design.ratio(columns, denominator, by=by, na_rm=True, level=level)
        return out.assign(variable=out["variable"].str.slice(stop=-len(denominator) - 1))
    return design.quantile(columns, 0.5, by=by, na_rm=True, level=level)


def logit_interval(estimate, se, df, level):
    """Logit interval of a proportion (R ``svyciprop(method = "logit")``); p = 0 or 1 gives [p, p]."""
    p, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    q = stats.t.ppf(0.5 + np.asarray(level) / 2, np.asarray(df, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        eta, half = np.log(p / (1 - p)), q * se / (p * (1 - p))
        low, high = 1 / (1 + np.exp(-(eta - half))), 1 / (1 + np.exp(-(eta + half)))
    edge = (p <= 0) | (p >= 1)
    return np.where(edge, p, low), np.where(edge, p, high)


def _with_columns(design, table: pd.DataFrame):
    """A copy of ``design`` whose data also holds the working columns (R's ``update(design, ...)``)."""
    new = copy.copy(design)
    new.data = table
    return new


# ---------------------------------------------------------------------------------------------------
# running a list


def _groups_of(table: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Group code of every row (groups in sorted order) and the groups' values, one column each."""
    if not columns:
        return np.zeros(len(table), dtype=np.int64), pd.DataFrame(index=[0])
    grouped = table[columns].groupby(columns, sort=True)
    labels = grouped.size().index.to_frame(index=False)
    return grouped.ngroup().to_numpy(), labels


def _sums(codes: np.ndarray, size: int, values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.bincount(codes, weights=values, minlength=size),
            np.bincount(codes, weights=values * weights, minlength=size))


def interval(estimate, se, df, level, method):
    """Interval per estimate: ``method`` "wald" (estimate ± t_df·se) or "logit" (:func:`logit_interval`),
    a name or one per estimate; df = inf gives the normal quantile."""
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    df, level = np.broadcast_to(np.asarray(df, dtype=float), estimate.shape), np.broadcast_to(level, estimate.shape)
    method = np.broadcast_to(np.asarray(method), estimate.shape)
    q = stats.t.ppf(0.5 + level / 2, df)
    low, high = estimate - q * se, estimate + q * se
    logit = method == "logit"
    if logit.any():
        low[logit], high[logit] = logit_interval(estimate[logit], se[logit], df[logit], level[logit])
    return low, high


def run(design, loa: pd.DataFrame, form=None, source: str | None = None) -> pd.DataFrame:
    """Every analysis of ``loa`` on ``design`` (a :class:`analysis.survey.Design` or replicate design).

    ``form``: a parsed XLSForm (:func:`analysis.instrument.load_form`) or its path, for select_multiple
    options; ``source`` names the list in error messages. Returns :data:`RESULT_COLUMNS` then
    :data:`EXTRA_COLUMNS`, in the list's order, groups sorted. Estimates come from one call of the core
    per estimator, grouping and level, with every variable of that batch at once.
    """
    if isinstance(form, (str, Path)):
        from analysis.instrument import load_form

        form = load_form(form)
    data = design.data
    checked = check_loa(loa, data, source)
    plan = _Plan(data, form, source)
    for i, spec in enumerate(checked.itertuples(index=False)):
        plan.plan(i, spec)
    grouping = sorted({g for groups in checked["groups"] for g in groups})
    group_column = {g: f"loa:group:{g}" for g in grouping}
    texts = {group_column[g]: as_text(data[g]).fillna("NA").astype(object) for g in grouping}
    table = pd.concat([data, pd.DataFrame({**plan.columns, **texts}, index=data.index)], axis=1)
    work = _with_columns(design, table)
    weights = np.asarray(design.weights, dtype=float)

    items = pd.DataFrame([vars(item) for item in plan.items])
    if items.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS + EXTRA_COLUMNS)
    spec = checked.iloc[items["loa"]].reset_index(drop=True)
    items = pd.concat([items, spec[["analysis_type", "groups", "level", "df", "ci"]]], axis=1)
    items["estimator"] = items["analysis_type"].map(ESTIMATORS)
    items["batch_level"] = np.where(items["estimator"] == "median", items["level"], 0.95)
    items["batch_df"] = np.where(items["estimator"] == "median", items["df"], "")
    items["batch_den"] = items["denominator"].fillna("")
    pieces, group_cache = [], {}
    keys = ["estimator", "groups", "batch_level", "batch_df", "batch_den"]
    for (estimator, groups, level, rule, denominator), batch in items.groupby(keys, sort=False):
        by = [group_column[g] for g in groups]
        if groups not in group_cache:
            group_cache[groups] = _groups_of(table, by)
        codes, labels = group_cache[groups]
        pieces.append(_batch(work, plan, batch, estimator, by, level, rule, denominator or None,
                             codes, labels, weights))
    missing = [_missing_lines(plan, checked, i, group_column, group_cache, table, weights) for i in plan.missing]
    out = pd.concat(pieces + missing, ignore_index=True)
    out = out.sort_values(["_loa", "_group", "_order"], kind="stable", ignore_index=True)
    return _finish(out, checked)


def _batch(work, plan: _Plan, batch: pd.DataFrame, estimator: str, by: list[str], level: float, rule: str,
           denominator: str | None, codes: np.ndarray, labels: pd.DataFrame, weights: np.ndarray) -> pd.DataFrame:
    """The lines of one batch: core estimates per group merged with counts and intervals."""
    columns = list(dict.fromkeys(batch["column"]))
    result = _core(work, estimator, columns, denominator, by, level)
    design_df = None
    if (batch["df"] == "design").any() and by and estimator != "median":
        overall = _core(work, estimator, columns, denominator, [], level)
        design_df = overall.set_index("variable")["df"]
    elif not by:
        design_df = result.set_index("variable")["df"]
    size = len(labels)
    code_of = labels.assign(_group=np.arange(size))
    result = result.merge(code_of, on=by, how="left") if by else result.assign(_group=0)
    den = plan.columns[denominator] if denominator else None
    position = {c: j for j, c in enumerate(columns)}
    used_n, used_w, hit_n, hit_w = (np.zeros((size, len(columns))) for _ in range(4))
    for column, j in position.items():
        values = plan.columns[column]
        used = ~np.isnan(values) if den is None else ~np.isnan(values) & ~np.isnan(den)
        used_n[:, j], used_w[:, j] = _sums(codes, size, used.astype(float), weights)
        hit_n[:, j], hit_w[:, j] = _sums(codes, size, np.where(used, values == 1, 0.0), weights)
    lines = batch.merge(result, left_on="column", right_on="variable", how="inner")
    g, j = lines["_group"].to_numpy(), lines["column"].map(position).to_numpy()
    select = lines["hits"].notna().to_numpy()
    n_total, n_w_total = used_n[g, j], used_w[g, j]
    n = np.where(select, hit_n[g, j], n_total)
    n_w = np.where(select, hit_w[g, j], n_w_total)
    df = lines["df_y"].to_numpy(dtype=float)
    if design_df is not None:
        df = np.where(lines["df_x"] == "design", lines["column"].map(design_df).to_numpy(dtype=float), df)
    df = np.where(lines["df_x"] == "z", np.inf, df)
    estimate, se = lines["estimate"].to_numpy(dtype=float), lines["se"].to_numpy(dtype=float)
    if estimator == "median":
        low, high = lines["ci_low"].to_numpy(dtype=float), lines["ci_high"].to_numpy(dtype=float)
    else:
        low, high = interval(estimate, se, df, lines["level"].to_numpy(dtype=float), lines["ci"].to_numpy())
    out = pd.DataFrame({"_loa": lines["loa"], "_group": g, "_order": lines["order"], "analysis_var_value": lines["value"],
                        "stat": estimate, "stat_low": low, "stat_upp": high, "n": n, "n_total": n_total,
                        "n_w": n_w, "n_w_total": n_w_total, "se": se, "df": df})
    out = pd.concat([out, lines[by].reset_index(drop=True)], axis=1) if by else out
    keep = ~select | (n > 0)  # an answer not seen in a group has no line, as in analysistools
    return out[keep]


def _missing_lines(plan: _Plan, checked: pd.DataFrame, i: int, group_column: dict, group_cache: dict,
                   table: pd.DataFrame, weights: np.ndarray) -> pd.DataFrame:
    """The line counting the rows without an answer, per group (select questions; only where any)."""
    groups = checked.iloc[i]["groups"]
    codes, labels = group_cache[groups]
    count = np.bincount(codes, weights=plan.columns[plan.missing[i]], minlength=len(labels))
    value = None if checked.iloc[i]["analysis_type"] == "prop_select_one" else "NA"
    out = labels.assign(_loa=i, _group=np.arange(len(labels)), _order=np.iinfo(np.int32).max,
                        analysis_var_value=value, n=count)
    return out[count > 0]


def _join(parts: list, sep: str):
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + sep + part
    return joined


def _finish(out: pd.DataFrame, checked: pd.DataFrame) -> pd.DataFrame:
    """analysistools' columns and analysis_key for the lines of ``run``."""
    spec = checked.iloc[out["_loa"]].reset_index(drop=True)
    ratio = (spec["analysis_type"] == "ratio").to_numpy()
    variable = np.where(ratio, spec["numerator"] + " %/% " + spec["denominator"], spec["analysis_var"])
    group_var = pd.Series(np.nan, index=out.index, dtype=object)
    group_value = pd.Series(np.nan, index=out.index, dtype=object)
    group_key = pd.Series("NA %/% NA", index=out.index, dtype=object)
    for groups, rows in pd.Series(range(len(spec))).groupby(spec["groups"].map(",".join)).indices.items():
        if not groups:
            continue
        names = groups.split(",")
        values = [out[f"loa:group:{g}"].iloc[rows].astype(str).to_numpy(dtype=object) for g in names]
        group_var.iloc[rows] = " %/% ".join(names)
        group_value.iloc[rows] = _join(values, " %/% ")
        group_key.iloc[rows] = _join([names[k] + " %/% " + values[k] for k in range(len(names))], " -/- ")
    value = out["analysis_var_value"]
    value_text = value.where(value.notna(), "NA").astype(str)
    kind = spec["analysis_type"]
    key = np.where(ratio, kind + " @/@ " + spec["numerator"] + " %/% NA -/- " + spec["denominator"] + " %/% NA @/@ ",
                   kind + " @/@ " + pd.Series(variable) + " %/% " + value_text + " @/@ ") + pd.Series(group_key)
    result = pd.DataFrame({"analysis_type": kind, "analysis_var": variable, "analysis_var_value": value,
                           "group_var": group_var, "group_var_value": group_value})
    for column in ["stat", "stat_low", "stat_upp", "n", "n_total", "n_w", "n_w_total", "se", "df"]:
        result[column] = out[column].to_numpy(dtype=float) if column in out else np.nan
    result["analysis_key"] = key
    empty = result["n_total"] == 0  # analysistools' correct_nan_total_is_0
    result.loc[empty, ["stat", "stat_low", "stat_upp", "se"]] = np.nan
    for column in ("n", "n_total"):
        result[column] = result[column].round().astype("Int64")
    return result[RESULT_COLUMNS + EXTRA_COLUMNS]


# ---------------------------------------------------------------------------------------------------
# files


def design_from_columns(data: pd.DataFrame, weights: str | None = None, strata: str | None = None,
                        ids: list[str] | None = None, fpc: list[str] | None = None) -> Design:
    """The design named by columns of ``data`` (none = equal weights, each row its own PSU, as srvyr's
    ``as_survey(data)``)."""
    return Design(data, weights=weights, strata=strata, ids=ids or None, fpc=fpc or None)


def analyse_files(data: str | Path, loa: str | Path, out: str | Path, form: str | Path | None = None,
                  weights: str | None = None, strata: str | None = None, ids: list[str] | None = None,
                  fpc: list[str] | None = None) -> pd.DataFrame:
    """``python -m analysis analyse``: read the clean table and the list, write the results CSV."""
    table = read_data(data)
    results = run(design_from_columns(table, weights, strata, ids, fpc), read_loa(loa), form=form, source=str(loa))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out, index=False)
    return results
