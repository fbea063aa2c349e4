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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.errors import AnalysisError
from analysis.loa import (
    CI_METHODS,
    EXTRA_COLUMNS,
    RATIO_COLUMNS,
    RESULT_COLUMNS,
    check_loa,
    coded,
    numeric_values,
    read_data,
    read_loa,
    select_multiple,
)
from analysis.survey import Design, intervals
from analysis.survey.groups import stacked
from analysis.threads import THREADS, release_free_memory

# ---------------------------------------------------------------------------------------------------
# planning: every analysis becomes columns of one working table


@dataclass(frozen=True)
class _Item:
    """One line family of a list row: the estimate of ``column`` (over ``denominator`` for a ratio)."""

    loa: int  # position in the checked list
    value: object  # analysis_var_value (None = missing)
    order: int  # position of the value within the list row
    column: str
    denominator: str = ""
    flags: tuple = ()  # a ratio's (numerator_NA_to_0, filter_denominator_0)
    hits: str | None = None  # column whose 1s n counts (select questions); None = the rows used


class _Plan:
    """Working columns (named ``loa:<k>:<what>``) and the items that estimate them."""

    def __init__(self, data: pd.DataFrame, form, source: str | None):
        self.data, self.form, self.source = data, form, source
        self.columns: dict[str, np.ndarray] = {}
        self.items: list[_Item] = []
        self.missing: dict[int, str] = {}  # list position -> column marking the rows without an answer
        self._cache: dict[tuple, object] = {}

    def add(self, key: tuple, label: str, make) -> str:
        """The working column for ``key``, built once by ``make()``."""
        if key not in self._cache:
            name = f"loa:{len(self.columns)}:{label}"
            self.columns[name] = np.asarray(make(), dtype=float)
            self._cache[key] = name
        return self._cache[key]

    def number(self, var: str, row: int, column: str) -> str:
        return self.add(("num", var), var, lambda: numeric_values(self.data, var, row, column, self.source))

    def plan(self, i: int, spec) -> None:
        kind, var = spec.analysis_type, spec.analysis_var
        if kind in ("mean", "median", "total"):
            self.items.append(_Item(i, None, 0, self.number(var, spec.row, "analysis_var")))
        elif kind == "ratio":
            numerator = self.number(spec.numerator, spec.row, RATIO_COLUMNS[0])
            denominator = self.number(spec.denominator, spec.row, RATIO_COLUMNS[1])
            flags = (bool(spec.numerator_NA_to_0), bool(spec.filter_denominator_0))
            self.items.append(_Item(i, "NA %/% NA", 0, numerator, denominator, flags))
        elif kind == "prop_select_one":
            if ("coded", var) not in self._cache:
                self._cache[("coded", var)] = coded(self.data[var])
            codes, levels = self._cache[("coded", var)]
            for order, level in enumerate(levels):
                column = self.add(
                    ("level", var, level),
                    f"{var}={level}",
                    lambda k=order: np.where(codes < 0, np.nan, codes == k),
                )
                self.items.append(_Item(i, level, order, column, hits=column))
            self.missing[i] = self.add(("missing", var), f"{var}=NA", lambda: codes < 0)
        else:
            options, respondents = self._options(spec)
            for order, option in enumerate(options.columns):
                column = self.add(
                    ("option", var, option),
                    f"{var}/{option}",
                    lambda o=option: np.where(respondents, options[o].to_numpy(), np.nan),
                )
                self.items.append(_Item(i, option, order, column, hits=column))
            self.missing[i] = self.add(("unanswered", var), f"{var}=NA", lambda: (~respondents).astype(float))

    def _options(self, spec):
        key = ("options", spec.analysis_var)
        if key not in self._cache:
            options, respondents = select_multiple(self.data, spec.analysis_var, self.form)
            if options.empty:
                raise AnalysisError(
                    f"no options found for select_multiple '{spec.analysis_var}'",
                    file=self.source,
                    row=spec.row,
                    column="analysis_var",
                    hint="give the form (--form), or columns named <question>/<option>",
                )
            self._cache[key] = (options, respondents)
        return self._cache[key]

    def used(self, column: str, denominator: str = "", flags: tuple = ()) -> np.ndarray:
        """Rows an estimate of ``column`` uses (a ratio's after its missing-value options)."""
        values = self.columns[column]
        if not denominator:
            return ~np.isnan(values)
        den = self.columns[denominator]
        keep = ~np.isnan(den) & (~np.isnan(values) | flags[0])
        return keep & (den != 0) if flags[1] else keep


# ---------------------------------------------------------------------------------------------------
# the calls to the survey core, all here


ESTIMATORS = {
    "mean": "mean",
    "total": "total",
    "prop_select_one": "mean",
    "prop_select_multiple": "mean",
    "ratio": "ratio",
    "median": "median",
}


def _core(
    design,
    frame: pd.DataFrame,
    estimator: str,
    columns: list[str],
    by: list[str],
    level: float,
    denominator: str = "",
    flags: tuple = (),
    df="domain",
) -> pd.DataFrame:
    """Estimate, se, ci_low, ci_high, df (the domain's) and n per group and column (``variable``).

    The design reads its variables from ``frame`` (the working columns: R's ``update(design, ...)``);
    a select question's share is the mean of its 0/1 column among the rows answering, as
    ``Design.proportion`` computes it; medians use ``qrule="school"`` with Woodruff's interval.
    """
    work = copy.copy(design)
    work.data = frame
    by = by or None
    if estimator in ("mean", "total"):  # the list's results have no design effect: not computed
        return getattr(work, estimator)(columns, by=by, na_rm=True, level=level, deff=False)
    if estimator == "ratio":
        out = work.ratio(
            columns,
            denominator,
            by=by,
            na_rm=True,
            level=level,
            numerator_na_to_0=flags[0],
            filter_denominator_0=flags[1],
            deff=False,
        )
        return out.assign(variable=out["variable"].str.slice(stop=-len(denominator) - 1))
    return work.quantile(columns, 0.5, by=by, na_rm=True, level=level, df=df, qrule="school")


def interval(estimate, se, df, level, method):
    """Interval per estimate: ``method`` "wald" (estimate ± q·se) or "logit" (R ``svyciprop``), one name or
    one
    per estimate; q is the t quantile with ``df`` (normal where df is infinite)."""
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    df = np.broadcast_to(np.asarray(df, dtype=float), estimate.shape)
    level = np.broadcast_to(np.asarray(level, dtype=float), estimate.shape)
    method = np.broadcast_to(np.asarray(method), estimate.shape)
    low, high = np.full(estimate.shape, np.nan), np.full(estimate.shape, np.nan)
    for value in np.unique(level):
        for name in CI_METHODS:
            pick = (level == value) & (method == name)
            if not pick.any():
                continue
            if name == "logit":
                low[pick], high[pick] = intervals.logit_interval(estimate[pick], se[pick], df[pick], value)
            else:
                low[pick], high[pick] = intervals.wald(
                    estimate[pick], se[pick], intervals.critical(value, df[pick])
                )
    return low, high


# ---------------------------------------------------------------------------------------------------
# running a list


def _groups_of(codes: dict, groups: tuple[str, ...], n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Group of every row (groups in sorted order) and each group's code of every grouping variable."""
    if not groups:
        return np.zeros(n, dtype=np.int64), {}
    key = _combined({g: codes[g][0] for g in groups}, codes)
    uniques, rows_group = np.unique(key, return_inverse=True)
    first = np.zeros(len(uniques), dtype=np.int64)
    first[rows_group[::-1]] = np.arange(n)[::-1]
    return rows_group.astype(np.int64), {g: codes[g][0][first] for g in groups}


def _combined(by_codes: dict[str, np.ndarray], codes: dict) -> np.ndarray:
    """One integer per combination of group codes, ordered as the combinations sort."""
    key = np.zeros(len(next(iter(by_codes.values()))), dtype=np.int64)
    for g, code in by_codes.items():
        key = key * (len(codes[g][1]) + 1) + np.asarray(code, dtype=np.int64)
    return key


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
    if not plan.items:
        return pd.DataFrame(columns=RESULT_COLUMNS + EXTRA_COLUMNS)
    codes = {}  # group variable -> (code per row, text per code); a missing value is the group "NA"
    for g in sorted({g for groups in checked["groups"] for g in groups}):
        code, text = coded(data[g])
        codes[g] = (np.where(code < 0, len(text), code), np.array([*text, "NA"], dtype=object))
    weights = np.asarray(design.weights, dtype=float)
    items = pd.DataFrame([vars(item) for item in plan.items])
    spec = checked.iloc[items["loa"]].reset_index(drop=True)
    items = pd.concat([items, spec[["analysis_type", "groups", "level", "df", "ci"]]], axis=1)
    items["estimator"] = items["analysis_type"].map(ESTIMATORS)
    median = items["estimator"] == "median"
    items["batch_level"] = np.where(median, items["level"], 0.95)  # the level changes only a median's se
    items["batch_df"] = np.where(median, items["df"], "")
    design_df = _design_df(design, plan, items[items["df"] == "design"])
    group_cache = {}
    keys = ["estimator", "groups", "batch_level", "batch_df", "denominator", "flags"]
    batches = list(items.groupby(keys, sort=False))
    for (_, groups, *_), _ in batches:
        if groups not in group_cache:
            group_cache[groups] = _groups_of(codes, groups, len(data))

    def one(entry) -> dict:
        (estimator, groups, level, rule, denominator, flags), batch = entry
        return _batch(
            design,
            plan,
            batch,
            estimator,
            groups,
            level,
            rule,
            denominator,
            flags,
            group_cache[groups],
            codes,
            weights,
            design_df,
        )

    with ThreadPoolExecutor(THREADS) as pool:  # batches of estimates made at once
        pieces = list(pool.map(one, batches))
    release_free_memory()  # what the two threads' malloc arenas keep would add to the stage's peak
    for i, column in plan.missing.items():
        groups = checked.at[i, "groups"]
        rows_group, label_codes = group_cache[groups]
        size = len(next(iter(label_codes.values()))) if groups else 1
        count = np.bincount(rows_group, weights=plan.columns[column], minlength=size)
        seen = np.flatnonzero(count > 0)
        value = None if checked.at[i, "analysis_type"] == "prop_select_one" else "NA"
        pieces.append(
            {
                "_loa": np.full(len(seen), i),
                "_group": seen,
                "_order": np.full(len(seen), np.iinfo(np.int32).max),
                "analysis_var_value": np.full(len(seen), value, dtype=object),
                "n": count[seen],
                **{g: label_codes[g][seen] for g in groups},
            }
        )
    return _finish(pieces, checked, codes)


def _batch(
    design,
    plan: _Plan,
    batch: pd.DataFrame,
    estimator: str,
    groups: tuple,
    level: float,
    rule: str,
    denominator: str,
    flags: tuple,
    grouping: tuple,
    group_codes: dict,
    weights: np.ndarray,
    design_df: dict,
) -> dict:
    """The lines of one batch: core estimates per group and column, with counts and intervals."""
    rows_group, label_codes = grouping
    by, size = list(groups), (len(next(iter(label_codes.values()))) if groups else 1)
    columns = list(dict.fromkeys(batch["column"]))
    used = {c: plan.used(c, denominator, flags) for c in columns}
    masks = stacked([used[c] for c in columns], len(rows_group))
    hits = stacked([(plan.columns[c] == 1) & used[c] for c in columns], len(rows_group))
    rows = (rows_group, np.arange(len(rows_group)))
    count, weigh = (
        sparse.csr_matrix((v, rows), shape=(size, len(rows_group))) for v in (np.ones(len(weights)), weights)
    )
    used_n, hit_n, used_w, hit_w = (np.asarray(m @ x) for m in (count, weigh) for x in (masks, hits))
    del masks, hits  # rows × columns each: not held while the estimates are made
    by_codes = {g: group_codes[g][0] for g in by}
    alone = []  # medians run one variable at a time where a group has none of its values (R's subset)
    if estimator == "median":
        weight_of = np.bincount(rows_group, weights, size)
        alone = [
            c
            for j, c in enumerate(columns)
            if rule == "design" or ((weight_of > 0) & (used_w[:, j] == 0)).any()
        ]
    together = [c for c in columns if c not in alone]
    parts = []
    if together:
        variables = {c: plan.columns[c] for c in [*together, denominator] if c}
        parts.append(
            _core(
                design,
                pd.DataFrame({**variables, **by_codes}, copy=False),
                estimator,
                together,
                by,
                level,
                denominator,
                flags,
                df=rule,
            )
        )
    for c in alone:
        masked = {g: np.where(used[c], by_codes[g], np.nan) for g in by}
        parts.append(
            _core(
                design,
                pd.DataFrame({c: plan.columns[c], **masked}),
                estimator,
                [c],
                by,
                level,
                df=design_df[(c, denominator, flags)] if rule == "design" else rule,
            )
        )
    result = pd.concat(parts, ignore_index=True)
    table = {k: np.full((size, len(columns)), np.nan) for k in ("estimate", "se", "ci_low", "ci_high", "df")}
    gid = (
        pd.Index(_combined({g: label_codes[g] for g in by}, group_codes)).get_indexer(
            _combined({g: result[g].to_numpy() for g in by}, group_codes)
        )
        if by
        else np.zeros(len(result), dtype=int)
    )
    cid = pd.Index(columns).get_indexer(result["variable"])
    for k, values in table.items():
        values[gid, cid] = result[k].to_numpy(dtype=float)
    item = np.repeat(np.arange(len(batch)), size)
    g = np.tile(np.arange(size), len(batch))
    j = pd.Index(columns).get_indexer(batch["column"])[item]
    select = batch["hits"].notna().to_numpy()[item]
    n_total, n_w_total = used_n[g, j], used_w[g, j]
    n, n_w = np.where(select, hit_n[g, j], n_total), np.where(select, hit_w[g, j], n_w_total)
    estimate, se, df = table["estimate"][g, j], table["se"][g, j], table["df"][g, j]
    if estimator == "median":
        low, high = table["ci_low"][g, j], table["ci_high"][g, j]
    else:
        choice = batch["df"].to_numpy()[item]
        if (choice == "design").any():
            own = np.array([design_df.get((c, denominator, flags), np.nan) for c in columns])[j]
            df = np.where(choice == "design", own, df)
        df = np.where(choice == "z", np.inf, df)
        low, high = interval(
            estimate, se, df, batch["level"].to_numpy(dtype=float)[item], batch["ci"].to_numpy()[item]
        )
    keep = ~select | (n > 0)  # an answer not seen in a group has no line, as in analysistools
    out = {
        "_loa": batch["loa"].to_numpy()[item],
        "_group": g,
        "_order": batch["order"].to_numpy()[item],
        "analysis_var_value": batch["value"].to_numpy(dtype=object)[item],
        "stat": estimate,
        "stat_low": low,
        "stat_upp": high,
        "n": n,
        "n_total": n_total,
        "n_w": n_w,
        "n_w_total": n_w_total,
        "se": se,
        "df": df,
        **{name: label_codes[name][g] for name in by},
    }
    return {k: v[keep] for k, v in out.items()}


def _design_df(design, plan: _Plan, items: pd.DataFrame) -> dict[tuple, float]:
    """srvyr's df for each (column, denominator, flags) of ``items``: the design's degrees of freedom over the
    rows the estimate uses (all groups together); one core call for every distinct set of rows."""
    keys = list(dict.fromkeys(zip(items["column"], items["denominator"], items["flags"])))
    masks, column_of = {}, {}
    for key in keys:
        rows = plan.used(*key)
        column_of[key] = masks.setdefault(rows.tobytes(), (f"rows{len(masks)}", rows))[0]
    if not masks:
        return {}
    frame = pd.DataFrame({name: np.where(rows, 1.0, np.nan) for name, rows in masks.values()})
    out = _core(design, frame, "mean", list(frame.columns), [], 0.95)
    df = dict(zip(out["variable"], out["df"].astype(float)))
    return {key: df[name] for key, name in column_of.items()}


def _join(parts: list, sep: str):
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + sep + part
    return joined


def _finish(pieces: list[dict], checked: pd.DataFrame, codes: dict) -> pd.DataFrame:
    """analysistools' columns and analysis_key for the lines of ``run``, in the list's order."""

    def stack(key, fill):
        return np.concatenate([p[key] if key in p else np.full(len(p["_loa"]), fill) for p in pieces])

    order = np.lexsort((stack("_order", 0), stack("_group", 0), stack("_loa", 0)))
    loa = stack("_loa", 0)[order]
    spec = checked.iloc[loa].reset_index(drop=True)
    ratio = (spec["analysis_type"] == "ratio").to_numpy()
    kind = spec["analysis_type"].to_numpy(dtype=object)
    variable = np.where(
        ratio, spec["numerator"] + " %/% " + spec["denominator"], spec["analysis_var"]
    ).astype(object)
    group_var = np.full(len(loa), np.nan, dtype=object)
    group_value = np.full(len(loa), np.nan, dtype=object)
    group_key = np.full(len(loa), "NA %/% NA", dtype=object)
    group_codes = {g: stack(g, -1)[order] for g in codes}
    for groups, rows in pd.Series(range(len(spec))).groupby(spec["groups"].map(",".join)).indices.items():
        if not groups:
            continue
        names = groups.split(",")
        values = [codes[g][1][group_codes[g][rows]] for g in names]
        group_var[rows] = " %/% ".join(names)
        group_value[rows] = _join(values, " %/% ")
        group_key[rows] = _join([names[k] + " %/% " + values[k] for k in range(len(names))], " -/- ")
    value = stack("analysis_var_value", None)[order]
    value_text = np.where(pd.isna(value), "NA", value).astype(object)
    numerator, denominator = (
        spec["numerator"].to_numpy(dtype=object),
        spec["denominator"].to_numpy(dtype=object),
    )
    key = (
        np.where(
            ratio,
            kind + " @/@ " + numerator + " %/% NA -/- " + denominator + " %/% NA @/@ ",
            kind + " @/@ " + variable + " %/% " + value_text + " @/@ ",
        )
        + group_key
    )
    result = pd.DataFrame(
        {
            "analysis_type": kind,
            "analysis_var": variable,
            "analysis_var_value": value,
            "group_var": group_var,
            "group_var_value": group_value,
        }
    )
    for column in ["stat", "stat_low", "stat_upp", "n", "n_total", "n_w", "n_w_total", "se", "df"]:
        result[column] = stack(column, np.nan)[order].astype(float)
    result["analysis_key"] = key
    empty = result["n_total"] == 0  # analysistools' correct_nan_total_is_0
    result.loc[empty, ["stat", "stat_low", "stat_upp", "se"]] = np.nan
    for column in ("n", "n_total"):
        result[column] = result[column].round().astype("Int64")
    return result[RESULT_COLUMNS + EXTRA_COLUMNS]


# ---------------------------------------------------------------------------------------------------
# files


def design_from_columns(
    data: pd.DataFrame,
    weights: str | None = None,
    strata: str | None = None,
    ids: list[str] | None = None,
    fpc: list[str] | None = None,
) -> Design:
    """The design named by columns of ``data`` (none = equal weights, each row its own PSU, as srvyr's
    ``as_survey(data)``)."""
    return Design(data, weights=weights, strata=strata, ids=ids or None, fpc=fpc or None)


def analyse_files(
    data: str | Path,
    loa: str | Path,
    out: str | Path,
    form: str | Path | None = None,
    weights: str | None = None,
    strata: str | None = None,
    ids: list[str] | None = None,
    fpc: list[str] | None = None,
) -> pd.DataFrame:
    """``python -m analysis analyse``: read the clean table and the list, write the results CSV."""
    table = read_data(data)
    results = run(
        design_from_columns(table, weights, strata, ids, fpc), read_loa(loa), form=form, source=str(loa)
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out, index=False)
    return results
