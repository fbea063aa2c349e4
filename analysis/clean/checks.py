"""Checks of whole interviews: repeated uuids, test submissions, consent, duration, soft duplicates.

Each returns cleaning-log rows with its default decision (``remove_survey`` for an interview that cannot
be used). A check that cannot run — its field is not in the export, or not set in the settings — adds
a row to ``notes`` (check_id, status, detail) for the check summary instead of passing silently.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from analysis.clean.log import empty_log, log_rows, text
from analysis.distinct import each_distinct
from analysis.instrument import METADATA_TYPES, Form
from analysis.survey.groups import stacked
from analysis.threads import THREADS


def skip(notes: list | None, check_id: str, detail: str, status: str = "skipped", question: str = "") -> None:
    """Record that a check (or, for ``question``, part of it) did not run, and why."""
    if notes is not None:
        notes.append({"check_id": check_id, "status": status, "detail": detail, "question": question})


def check_duplicate_uuid(households: pd.DataFrame) -> pd.DataFrame:
    """Repeated submission uuids: every copy after the first is removed (``#n`` marks the copy)."""
    copies = households[households["uuid"].str.contains("#", regex=False)]
    return log_rows(
        copies["uuid"],
        None,
        None,
        None,
        None,
        "duplicate uuid: the same submission appears more than once",
        "duplicate_uuid",
        "remove_survey",
        copies.index,
    )


def _answer_codes(values: pd.Series) -> np.ndarray:
    """Codes of a column's answers in order of first appearance, -1 where missing; text compared stripped and
    lower-cased, blank as missing. Text columns are coded first and their distinct answers normalised
    after (the same codes, without stripping every cell)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return pd.factorize(values)[0]
    if not isinstance(values.dtype, pd.StringDtype):
        return pd.factorize(values.astype("string").str.strip().str.lower().replace("", None))[0]

    def normal_codes(distinct) -> np.ndarray:
        normal = pd.Series(distinct, dtype=values.dtype).str.strip().str.lower().replace("", None)
        return pd.factorize(normal)[0]

    return each_distinct(values, normal_codes, -1)


def _member_codes(households: pd.DataFrame, persons: pd.DataFrame, member_cols: list) -> list[np.ndarray]:
    """Codes of the roster laid out wide (one column per member question and member slot, slots in sorted
    order; -1 where a household has no such member), each column kept when it has an answer. Each person
    column is coded once and its codes spread over the slots (codes compare equal exactly where the answers
    do, as coding every wide column on its own would)."""
    if persons.duplicated(["uuid", "member"]).any() or persons["member"].isna().any():
        wide = persons.set_index(["uuid", "member"])[member_cols].unstack("member")  # fails as it should
        wide = wide.reindex(households["uuid"]).set_axis(households.index)
        return [code for c in wide.columns if ((code := _answer_codes(wide[c])) >= 0).any()]
    who, ids = pd.factorize(persons["uuid"])
    slot, slots = pd.factorize(persons["member"], sort=True)
    row = pd.Index(ids).get_indexer(households["uuid"])  # -1: no roster, the grid's last row (all -1)
    out = []
    for c in member_cols:
        grid = np.full((len(ids) + 1, len(slots)), -1, dtype=np.int64)
        grid[who, slot] = _answer_codes(persons[c])
        wide = grid[row]
        out += [wide[:, k] for k in range(len(slots)) if (wide[:, k] >= 0).any()]
    return out


def _comparable(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Answer codes and answered flags compared for soft duplicates, as cleaningtools does (no metadata,
    notes, calculates, select_multiple children, personal data or all-missing columns; text lower-cased),
    plus the roster: one column per member slot and member question, so a copied interview is compared
    whole. Returns the codes, one row per household, in the smallest integer type that holds them (the
    pairs' comparison reads less memory); a missing answer has code -1."""
    fields = form.data_fields()
    usable = ~fields["base_type"].isin(METADATA_TYPES | {"calculate", "note"}) & ~fields["pii"]
    cols = [c for c in fields.loc[usable & fields["repeat"].isna(), "name"] if c in households]
    codes = [code for c in cols if ((code := _answer_codes(households[c])) >= 0).any()]
    member_cols = [c for c in fields.loc[usable & fields["repeat"].notna(), "name"] if c in persons]
    if len(persons) and member_cols:
        codes += _member_codes(households, persons, member_cols)
    if not codes:
        return np.empty((len(households), 0), np.int8)
    largest = max(int(code.max()) for code in codes)
    return stacked(codes, len(households), np.min_scalar_type(-largest - 1))


def check_soft_duplicates(
    form: Form,
    households: pd.DataFrame,
    persons: pd.DataFrame,
    match: float = 0.85,
    block: str | None = None,
    chunk: int = 100_000,
    max_differing: int | None = None,
    notes: list | None = None,
) -> pd.DataFrame:
    """Interviews that repeat another one: the share of answered questions on which two submissions
    agree (percent match, Kuriakose & Robbins 2016, "Don't get duped", Stat. J. IAOS 32:283) is above
    ``match`` (their 85% threshold), or, with ``max_differing``, at most that many answers differ
    (cleaningtools' ``check_soft_duplicates`` rule, Gower distance × columns). Of each pair the
    submission started later is removed. Pairs are sought within ``block`` (the sampling unit, where a
    copy would be made), so the cost grows with block size, not with the square of the survey.
    """
    codes = _comparable(form, households, persons)
    if codes.shape[0] < 2 or codes.shape[1] == 0:
        return empty_log()
    if block and block not in households:
        skip(
            notes,
            "soft_duplicate",
            f"block field '{block}' is not in the export: pairs sought across the whole survey",
            status="partial",
        )
    groups = (
        households[block].fillna("").astype(str).to_numpy()
        if block and block in households
        else np.zeros(len(households), dtype=int)
    )
    rows = pd.DataFrame({"g": pd.factorize(groups)[0], "row": np.arange(len(households))})
    pairs = rows.merge(rows, on="g")
    pairs = pairs[pairs["row_x"] < pairs["row_y"]]
    a_all, b_all = pairs["row_x"].to_numpy(), pairs["row_y"].to_numpy()

    def matching(start: int) -> pd.DataFrame:  # bounded memory: chunk pairs × columns at a time
        a, b = a_all[start : start + chunk], b_all[start : start + chunk]
        code_a, code_b = codes[a], codes[b]
        differ = np.count_nonzero(code_a != code_b, axis=1)
        # answered by either: all columns but those missing (-1, every bit set) in both
        either = codes.shape[1] - np.count_nonzero((code_a & code_b) == -1, axis=1)
        del code_a, code_b
        share = 1 - differ / np.maximum(either, 1)
        hit = differ <= max_differing if max_differing is not None else share > match
        return pd.DataFrame(
            {"a": a[hit], "b": b[hit], "differ": differ[hit], "share": share[hit], "columns": either[hit]}
        )

    with ThreadPoolExecutor(THREADS) as pool:  # numpy's gathers and counts release the GIL
        found = list(pool.map(matching, range(0, len(a_all), chunk)))
    pairs = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    if pairs.empty:
        return empty_log()
    order = (
        households["start"].rank(method="first").to_numpy()
        if "start" in households
        else np.arange(len(households), dtype=float)
    )
    order = np.where(np.isnan(order), np.arange(len(households)) + len(households), order)
    later_is_b = order[pairs["b"]] > order[pairs["a"]]
    pairs = pairs.assign(
        later=np.where(later_is_b, pairs["b"], pairs["a"]), first=np.where(later_is_b, pairs["a"], pairs["b"])
    )
    pairs = pairs.sort_values(["later", "share", "first"], ascending=[True, False, True]).drop_duplicates(
        "later"
    )
    first_uuid = households["uuid"].to_numpy()[pairs["first"]]
    later = households.iloc[pairs["later"].to_numpy()]
    issue = [
        f"soft duplicate: agrees with submission {u} on {s:.0%} of answered questions "
        f"({d} of {c} answers differ)"
        for u, s, d, c in zip(first_uuid, pairs["share"], pairs["differ"], pairs["columns"])
    ]
    return log_rows(
        later["uuid"].to_numpy(), None, None, None, None, issue, "soft_duplicate", "remove_survey"
    )


def with_duration(households: pd.DataFrame, start: str = "start", end: str = "end") -> pd.DataFrame:
    """``duration_min`` (end − start in minutes, 0.1 min) after ``end``, when both are timestamps."""
    hh = households
    if start not in hh or end not in hh or "duration_min" in hh:
        return hh
    if not (
        pd.api.types.is_datetime64_any_dtype(hh[start]) and pd.api.types.is_datetime64_any_dtype(hh[end])
    ):
        return hh
    minutes = ((hh[end] - hh[start]).dt.total_seconds() / 60).round(1)
    hh = hh.copy()
    hh.insert(hh.columns.get_loc(end) + 1, "duration_min", minutes)
    return hh


def check_duration(
    households: pd.DataFrame, low: float = 25.0, high: float = 90.0, notes: list | None = None
) -> pd.DataFrame:
    """Interview length (end − start, minutes) outside [low, high] (strict, as cleaningtools). Shorter
    interviews cannot have been done properly and are removed; longer ones are kept and flagged."""
    if "duration_min" not in households:
        skip(notes, "duration", "no start and end timestamps in the export (settings duration.start/end)")
        return empty_log()
    minutes = households["duration_min"]
    short, long = minutes < low, minutes > high
    rows = households[short | long]
    return log_rows(
        rows["uuid"],
        None,
        "duration_min",
        text(minutes[short | long]),
        None,
        np.where(
            short[short | long],
            f"Duration is lower than the threshold ({low:g} min)",
            f"Duration is higher than the threshold ({high:g} min)",
        ),
        "duration",
        np.where(short[short | long], "remove_survey", "no_action"),
    )


def check_no_consent(
    households: pd.DataFrame,
    consent_field: str | None = "consent",
    accept: tuple | list | str = ("yes",),
    notes: list | None = None,
) -> pd.DataFrame:
    """Submissions whose consent answer is not an accepting one: the interview must not be used."""
    if not consent_field:
        skip(notes, "no_consent", "no consent field set (settings consent.field)")
        return empty_log()
    if consent_field not in households:
        skip(notes, "no_consent", f"consent field '{consent_field}' is not in the export")
        return empty_log()
    accept = [accept] if isinstance(accept, str) else list(accept)
    rows = households[~households[consent_field].fillna("").astype(str).isin(accept)]
    return log_rows(
        rows["uuid"],
        None,
        consent_field,
        text(rows[consent_field]),
        None,
        "no consent recorded: interview cannot be used",
        "no_consent",
        "remove_survey",
        rows.index,
    )


def check_test_submissions(form: Form, households: pd.DataFrame, pattern: str) -> pd.DataFrame:
    """Test or practice submissions: 'test'/'测试'/'demo' in the enumerator, device or any free-text
    answer, or a submission dated before the form's version date (``settings.version`` as YYYYMMDD…)."""
    fields = form.data_fields()
    text_cols = [
        c
        for c in fields.loc[fields["base_type"].isin(["text", "deviceid", "username"]), "name"]
        if c in households
    ]
    hit = pd.Series(False, index=households.index)
    for col in text_cols:
        hit |= households[col].fillna("").astype(str).str.contains(pattern, regex=True)
    version = str(form.settings.get("version", ""))
    if (
        re.fullmatch(r"\d{8,}", version)
        and "start" in households
        and pd.api.types.is_datetime64_any_dtype(households["start"])
    ):
        deployed = pd.to_datetime(version[:8], format="%Y%m%d", errors="coerce")
        if pd.notna(deployed):
            hit |= households["start"] < deployed
    rows = households[hit]
    return log_rows(
        rows["uuid"],
        None,
        None,
        None,
        None,
        "test submission (marked as test or made before the form was deployed)",
        "test_submission",
        "remove_survey",
        rows.index,
    )
