"""Checks, cleaning and deletion logs, decisions and clean tables, following IMPACT's ``cleaningtools``.

Every check returns cleaning-log rows ``uuid, person_id, question, old_value, new_value, issue, check_id,
change_type`` (shared docs/sources.md §5.1; ``person_id`` is added for repeat-group rows, as cleaningtools adds
``cols_to_add_cleaning_log``). ``change_type`` is one of change_response / blank_response / remove_survey /
no_action. The default decision of each check is a rule in this module; a person edits the log (CSV or
XLSX), passes it back as ``decisions`` and their change_type/new_value win (:func:`apply_decisions`).
The clean data are made by applying the log (:func:`apply_log`), then audited as ``review_cleaning``
does (:func:`review_cleaning`). Every raw submission ends in the clean table or the deletion log.

Checks are driven by the XLSForm (constraints, relevance, choices, types), so they work for any Kobo/ODK
survey; the few survey-specific names (consent field, household-size field, roster relation and age)
are parameters in :class:`Settings` with this project's instrument as default.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.form_logic import ExpressionError, evaluate_bool
from analysis.ingest import RawExport, read_export, sha256
from analysis.instrument import METADATA_TYPES, Form, load_form

LOG_COLUMNS = ["uuid", "person_id", "question", "old_value", "new_value", "issue", "check_id", "change_type"]
CHANGE_TYPES = ("change_response", "blank_response", "remove_survey", "no_action")
DELETION_COLUMNS = ["uuid", "household_id", "enumerator", "deviceid", "check_id", "issue", "reason"]


@dataclass(frozen=True)
class Settings:
    """Thresholds and the survey-specific field names the checks use.

    Defaults: duration 25–90 minutes and sentinel codes 99/999/88/888 are cleaningtools' defaults;
    3 SD outliers on raw and log(x+1) scales as cleaningtools' ``check_outliers`` (docs/sources.md §5.1), by
    default only on numeric fields whose range the form does not fix with a constraint (a constrained
    field's valid range is the form's; its violations are constraint rows). Soft duplicates: percent
    match above 85% (Kuriakose & Robbins 2016), sought within the PSU. cleaningtools' own soft-duplicate
    default (at most 7 differing columns) assumes hundreds of columns; on this 42-question household
    sheet it flagged a third of genuine interviews, so it is not used. ``min_head_age`` 15 is an
    assumption (below it a household head is implausible).
    """

    duration_min: float = 25.0
    duration_max: float = 90.0
    sentinels: tuple = (99, 999, 88, 888)
    outlier_sd: float = 3.0
    outlier_min_unique: int = 10
    outliers_on_constrained: bool = False
    soft_duplicate_match: float = 0.85
    duplicate_block: str | None = "psu"
    consent_field: str = "consent"
    consent_value: str = "yes"
    size_field: str = "hh_size"
    relation_field: str = "relation"
    head_value: str = "head"
    age_field: str = "age"
    min_head_age: float = 15.0
    younger_than_head: tuple = ("child", "grandchild")
    older_than_head: tuple = ("parent",)
    test_pattern: str = r"(?i)\btest\b|测试|測試|试填|試填|\bdemo\b"


@dataclass
class CleanResult:
    """What :func:`clean_survey` produced: tables, logs, counts and where they were written."""

    households: pd.DataFrame
    persons: pd.DataFrame
    cleaning_log: pd.DataFrame
    deletion_log: pd.DataFrame
    review: pd.DataFrame
    raw: RawExport
    out_dir: Path | None = None
    counts: dict = field(default_factory=dict)

    def __str__(self) -> str:
        c = self.counts
        where = f" -> {self.out_dir}" if self.out_dir else ""
        return (f"cleaned {c.get('raw_households')} submissions: {c.get('clean_households')} kept, "
                f"{c.get('deleted_households')} deleted; {c.get('clean_persons')} persons; "
                f"{len(self.cleaning_log)} cleaning-log rows{where}")


# ----- helpers ------------------------------------------------------------------------------------------

def _text(values: pd.Series) -> pd.Series:
    """Values as log text: whole numbers without '.0', times as ISO, missing as ''."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S").fillna("")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype(float)
        whole = numbers.notna() & (numbers == np.round(numbers))
        return pd.Series(np.where(whole, numbers.round().astype("Int64").astype(str),
                                  numbers.astype(str)), index=values.index).where(numbers.notna(), "")
    return values.astype(object).where(values.notna(), "").astype(str)


def _log(uuid, person_id, question, old, new, issue, check_id, change_type, index=None) -> pd.DataFrame:
    frame = pd.DataFrame({"uuid": uuid, "person_id": person_id, "question": question, "old_value": old,
                          "new_value": new, "issue": issue, "check_id": check_id, "change_type": change_type},
                         index=index)
    return frame.reset_index(drop=True)[LOG_COLUMNS]


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LOG_COLUMNS})


def _fields(form: Form) -> pd.DataFrame:
    return form.data_fields()


def _person_context(households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """Persons with their household's answers alongside (person columns win), for repeat expressions."""
    extra = [c for c in households.columns if c not in persons.columns or c == "uuid"]
    return persons.merge(households[extra], on="uuid", how="left", suffixes=("", "_hh")).set_axis(persons.index)


def _present(values: pd.Series) -> pd.Series:
    """Answered: not missing and, for text, not blank."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values.notna()
    return (values.notna() & (values.astype("string").str.strip().fillna("") != "")).astype(bool)


def _table_rows(form: Form, households: pd.DataFrame, persons: pd.DataFrame):
    """(field row, table frame, context frame, person_id series or None) for every answer column."""
    context = _person_context(households, persons)
    for row in _fields(form).itertuples(index=False):
        if row.repeat is None and row.name in households:
            yield row, households, households, None
        elif row.repeat is not None and row.name in persons:
            yield row, persons, context, persons["person_id"]


# Traditional characters that commonly appear in Cantonese-area place names and in the project's choice
# labels, mapped to their simplified forms (Unicode Unihan kSimplifiedVariant). A real survey with
# other names may need entries added here; unmatched variants are logged for review, never guessed.
TRADITIONAL = dict(zip(
    "黃連龍沖鶴華雲東廣區會劃長務義隊韋鄉鎮陳蘭灣島堯園圍橋們興豐鳳麗馮葉藥餘飯館護殘療輔導聯業練學習閱讀課補親職調經濟幫來適應訪問間醫體娛樂員湧愛鄰裡裏寧順進與參歲齡礙託顧個戶頭屬視聽說記憶語溝難對於這為無兒寫費錢買賣電話號碼車門開關農場廠鄧劉張楊吳趙鄭謝羅許蘇盧蔣賈鄒飲養診復師講營訓線熱",
    "黄连龙冲鹤华云东广区会划长务义队韦乡镇陈兰湾岛尧园围桥们兴丰凤丽冯叶药余饭馆护残疗辅导联业练学习阅读课补亲职调经济帮来适应访问间医体娱乐员涌爱邻里里宁顺进与参岁龄碍托顾个户头属视听说记忆语沟难对于这为无儿写费钱买卖电话号码车门开关农场厂邓刘张杨吴赵郑谢罗许苏卢蒋贾邹饮养诊复师讲营训线热"))
TRADITIONAL_TABLE = str.maketrans(TRADITIONAL)


def _normalise_name(values: pd.Series) -> pd.Series:
    """Text for matching names/labels: NFKC width folding, traditional → simplified for the characters in
    :data:`TRADITIONAL`, no spaces or punctuation, lower case."""
    text = values.fillna("").astype(str).map(lambda s: unicodedata.normalize("NFKC", s))
    text = text.str.translate(TRADITIONAL_TABLE)
    return text.str.replace(r"[\s\u3000·.,，。、'\"()（）\-_/]+", "", regex=True).str.lower()


# ----- checks -------------------------------------------------------------------------------------------

def check_duplicate_uuid(households: pd.DataFrame) -> pd.DataFrame:
    """Repeated submission uuids: every copy after the first is removed (``#n`` marks the copy)."""
    copies = households[households["uuid"].str.contains("#", regex=False)]
    return _log(copies["uuid"], None, None, None, None,
                "duplicate uuid: the same submission appears more than once", "duplicate_uuid",
                "remove_survey", copies.index)


def _comparable(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Answer codes and answered flags compared for soft duplicates, as cleaningtools does (no metadata,
    notes, calculates, select_multiple children, personal data or all-missing columns; text lower-cased),
    plus the roster: one column per member slot and member question, so a copied interview is compared
    whole. Returns (codes, answered), one row per household; a missing answer has code -1."""
    fields = _fields(form)
    usable = ~fields["base_type"].isin(METADATA_TYPES | {"calculate", "note"}) & ~fields["pii"]
    cols = [c for c in fields.loc[usable & fields["repeat"].isna(), "name"] if c in households]
    parts = [households[cols]]
    member_cols = [c for c in fields.loc[usable & fields["repeat"].notna(), "name"] if c in persons]
    if len(persons) and member_cols:
        wide = persons.set_index(["uuid", "member"])[member_cols].unstack("member")
        parts.append(wide.reindex(households["uuid"]).set_axis(households.index))
    codes = []
    for part in parts:
        for values in (part[c] for c in part.columns):
            if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
                values = values.astype("string").str.strip().str.lower().replace("", None)
            code = pd.factorize(values)[0]
            if (code >= 0).any():
                codes.append(code)
    codes = np.column_stack(codes).astype(np.int32) if codes else np.empty((len(households), 0), np.int32)
    return codes, codes >= 0


def check_soft_duplicates(form: Form, households: pd.DataFrame, persons: pd.DataFrame, match: float = 0.85,
                          block: str | None = "psu", chunk: int = 100_000) -> pd.DataFrame:
    """Interviews that repeat another one: the share of answered questions on which two submissions
    agree (percent match, Kuriakose & Robbins 2016, "Don't get duped", Stat. J. IAOS 32:283) is above
    ``match`` (their 85% threshold). The number of differing answers is reported as cleaningtools'
    ``check_soft_duplicates`` does (Gower distance × columns). Of each pair the submission started later
    is removed. Pairs are sought within ``block`` (the sampling unit, where a copy would be made), so the
    cost grows with block size, not with the square of the survey.
    """
    codes, answered = _comparable(form, households, persons)
    if codes.shape[0] < 2 or codes.shape[1] == 0:
        return _empty_log()
    groups = (households[block].fillna("").astype(str).to_numpy() if block and block in households
              else np.zeros(len(households), dtype=int))
    rows = pd.DataFrame({"g": pd.factorize(groups)[0], "row": np.arange(len(households))})
    pairs = rows.merge(rows, on="g")
    pairs = pairs[pairs["row_x"] < pairs["row_y"]]
    a_all, b_all = pairs["row_x"].to_numpy(), pairs["row_y"].to_numpy()
    found = []
    for start in range(0, len(a_all), chunk):  # bounded memory: chunk pairs × columns booleans
        a, b = a_all[start:start + chunk], b_all[start:start + chunk]
        differ = (codes[a] != codes[b]).sum(axis=1)
        either = (answered[a] | answered[b]).sum(axis=1)
        share = 1 - differ / np.maximum(either, 1)
        hit = share > match
        found.append(pd.DataFrame({"a": a[hit], "b": b[hit], "differ": differ[hit], "share": share[hit],
                                   "columns": either[hit]}))
    pairs = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    if pairs.empty:
        return _empty_log()
    order = (households["start"].rank(method="first").to_numpy() if "start" in households
             else np.arange(len(households), dtype=float))
    order = np.where(np.isnan(order), np.arange(len(households)) + len(households), order)
    later_is_b = order[pairs["b"]] > order[pairs["a"]]
    pairs = pairs.assign(later=np.where(later_is_b, pairs["b"], pairs["a"]),
                         first=np.where(later_is_b, pairs["a"], pairs["b"]))
    pairs = pairs.sort_values(["later", "share", "first"], ascending=[True, False, True]).drop_duplicates("later")
    first_uuid = households["uuid"].to_numpy()[pairs["first"]]
    later = households.iloc[pairs["later"].to_numpy()]
    issue = [f"soft duplicate: agrees with submission {u} on {s:.0%} of answered questions "
             f"({d} of {c} answers differ)"
             for u, s, d, c in zip(first_uuid, pairs["share"], pairs["differ"], pairs["columns"])]
    return _log(later["uuid"].to_numpy(), None, None, None, None, issue, "soft_duplicate", "remove_survey")


def check_duration(households: pd.DataFrame, low: float = 25.0, high: float = 90.0) -> pd.DataFrame:
    """Interview length (end − start, minutes) outside [low, high] (strict, as cleaningtools). Shorter
    interviews cannot have been done properly and are removed; longer ones are kept and flagged."""
    if "duration_min" not in households:
        return _empty_log()
    minutes = households["duration_min"]
    short, long = minutes < low, minutes > high
    rows = households[short | long]
    return _log(rows["uuid"], None, "duration_min", _text(minutes[short | long]), None,
                np.where(short[short | long], f"Duration is lower than the threshold ({low:g} min)",
                         f"Duration is higher than the threshold ({high:g} min)"),
                "duration", np.where(short[short | long], "remove_survey", "no_action"))


def check_no_consent(households: pd.DataFrame, consent_field: str = "consent",
                     consent_value: str = "yes") -> pd.DataFrame:
    """Submissions without consent: the interview must not be used."""
    if consent_field not in households:
        return _empty_log()
    rows = households[households[consent_field].fillna("") != consent_value]
    return _log(rows["uuid"], None, consent_field, _text(rows[consent_field]), None,
                "no consent recorded: interview cannot be used", "no_consent", "remove_survey", rows.index)


def check_test_submissions(form: Form, households: pd.DataFrame, pattern: str) -> pd.DataFrame:
    """Test or practice submissions: 'test'/'测试'/'demo' in the enumerator, device or any free-text
    answer, or a submission dated before the form's version date (``settings.version`` as YYYYMMDD…)."""
    fields = _fields(form)
    text_cols = [c for c in fields.loc[fields["base_type"].isin(["text", "deviceid", "username"]), "name"]
                 if c in households]
    hit = pd.Series(False, index=households.index)
    for col in text_cols:
        hit |= households[col].fillna("").astype(str).str.contains(pattern, regex=True)
    version = str(form.settings.get("version", ""))
    if re.fullmatch(r"\d{8,}", version) and "start" in households:
        deployed = pd.to_datetime(version[:8], format="%Y%m%d", errors="coerce")
        if pd.notna(deployed):
            hit |= households["start"] < deployed
    rows = households[hit]
    return _log(rows["uuid"], None, None, None, None, "test submission (marked as test or made before the "
                "form was deployed)", "test_submission", "remove_survey", rows.index)


def check_sentinels(form: Form, households: pd.DataFrame, persons: pd.DataFrame,
                    codes: tuple = (99, 999, 88, 888)) -> pd.DataFrame:
    """Sentinel codes (99, 999, 88, 888) in numeric answers. Blanked when the form's constraint rules the
    value out or the field has no constraint; kept for review when the value is plausible (age 88)."""
    out = []
    for row, table, context, person in _table_rows(form, households, persons):
        if row.base_type not in ("integer", "decimal"):
            continue
        values = table[row.name]
        hit = values.isin(codes)
        if not hit.any():
            continue
        allowed = (evaluate_bool(row.constraint, context, current=values) if row.constraint
                   else pd.Series(False, index=values.index))
        action = np.where(allowed[hit], "no_action", "blank_response")
        out.append(_log(table.loc[hit, "uuid"], None if person is None else person[hit], row.name,
                        _text(values[hit]), None, "possible sentinel code (don't know / refused)",
                        "sentinel", action, values[hit].index))
    return pd.concat(out, ignore_index=True) if out else _empty_log()


def check_constraints(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """Answers that break the form's ``constraint``. Numbers and selects are blanked; text answers
    (codes typed by hand) are flagged for review."""
    out = []
    for row, table, context, person in _table_rows(form, households, persons):
        if not row.constraint:
            continue
        values = table[row.name]
        present = _present(values)
        try:
            ok = evaluate_bool(row.constraint, context, current=values)
        except ExpressionError as exc:
            raise ConfigError(f"constraint of '{row.name}' cannot be evaluated: {exc.problem}",
                              column=row.name) from exc
        bad = present & ~ok
        if not bad.any():
            continue
        action = "no_action" if row.base_type == "text" else "blank_response"
        out.append(_log(table.loc[bad, "uuid"], None if person is None else person[bad], row.name,
                        _text(values[bad]), None, f"constraint violated: {row.constraint}", "constraint",
                        action, values[bad].index))
    return pd.concat(out, ignore_index=True) if out else _empty_log()


def check_skip_logic(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """Answers present where the form's relevance (own and enclosing groups') is false: blanked."""
    out = []
    for row, table, context, person in _table_rows(form, households, persons):
        if not row.relevant_all or row.base_type in METADATA_TYPES:
            continue
        values = table[row.name]
        try:
            relevant = evaluate_bool(row.relevant_all, context)
        except ExpressionError as exc:
            raise ConfigError(f"relevance of '{row.name}' cannot be evaluated: {exc.problem}",
                              column=row.name) from exc
        bad = _present(values) & ~relevant
        if not bad.any():
            continue
        out.append(_log(table.loc[bad, "uuid"], None if person is None else person[bad], row.name,
                        _text(values[bad]), None, f"answered although not relevant: {row.relevant_all}",
                        "skip_logic", "blank_response", values[bad].index))
    return pd.concat(out, ignore_index=True) if out else _empty_log()


def check_outliers(form: Form, households: pd.DataFrame, persons: pd.DataFrame, sd: float = 3.0,
                   min_unique: int = 10, constrained: bool = False) -> pd.DataFrame:
    """Numeric answers more than ``sd`` standard deviations from the mean, on the raw scale and on
    log(x+1) (cleaningtools ``check_outliers``); fields with fewer than ``min_unique`` distinct values
    are skipped, and so are fields with a form constraint unless ``constrained``. Outliers may be true,
    so they are flagged (no_action) for a person to decide."""
    out = []
    for row, table, context, person in _table_rows(form, households, persons):
        if row.base_type not in ("integer", "decimal") or (row.constraint and not constrained):
            continue
        values = table[row.name].astype(float)
        if values.nunique() < min_unique:
            continue
        for scale, transformed in (("normal", values), ("log", np.log1p(values.where(values >= 0)))):
            z = (transformed - transformed.mean()) / transformed.std()
            bad = z.abs() > sd
            if bad.any():
                out.append(_log(table.loc[bad, "uuid"], None if person is None else person[bad], row.name,
                                _text(values[bad]), None, f"outlier ({scale} distribution)", "outlier",
                                "no_action", values[bad].index))
    return pd.concat(out, ignore_index=True) if out else _empty_log()


def check_roster(households: pd.DataFrame, persons: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Household roster against the household answers: number of members vs the stated household size
    (the roster wins: size recoded), not exactly one head, a head younger than ``min_head_age``, a
    child or grandchild not younger than the head, a parent not older (flagged for review)."""
    out = []
    s = settings
    if s.size_field in households:
        counted = persons.groupby("uuid").size().reindex(households["uuid"]).fillna(0).to_numpy()
        stated = households[s.size_field]
        bad = stated.notna() & (counted > 0) & (stated.to_numpy() != counted)
        out.append(_log(households.loc[bad, "uuid"], None, s.size_field, _text(stated[bad]),
                        pd.Series(counted, index=households.index)[bad].astype(int).astype(str),
                        "household size differs from the number of people in the roster", "roster_size",
                        "change_response", households.index[bad]))
    if s.relation_field in persons and len(persons):
        is_head = persons[s.relation_field] == s.head_value
        heads = is_head.groupby(persons["uuid"]).sum()
        wrong = heads[heads != 1]
        out.append(_log(wrong.index, None, s.relation_field, wrong.astype(int).astype(str), None,
                        "roster does not have exactly one household head", "roster_heads", "no_action"))
        if s.age_field in persons:
            young = is_head & (persons[s.age_field] < s.min_head_age)
            out.append(_log(persons.loc[young, "uuid"], persons.loc[young, "person_id"], s.relation_field,
                            _text(persons.loc[young, s.relation_field]), None,
                            f"household head younger than {s.min_head_age:g}", "roster_child_head", "no_action",
                            persons.index[young]))
            head_age = persons[s.age_field].where(is_head).groupby(persons["uuid"]).transform("max")
            relation, age = persons[s.relation_field], persons[s.age_field]
            wrong = ((relation.isin(s.younger_than_head) & (age >= head_age))
                     | (relation.isin(s.older_than_head) & (age <= head_age)))
            out.append(_log(persons.loc[wrong, "uuid"], persons.loc[wrong, "person_id"], s.age_field,
                            _text(age[wrong]), None, "age does not fit the relationship to the household head "
                            "(a child not younger, or a parent not older, than the head)", "roster_generation",
                            "no_action", persons.index[wrong]))
    return pd.concat(out, ignore_index=True) if out else _empty_log()


def _choice_index(form: Form, field_name: str) -> dict[str, str]:
    """Normalised choice label/name -> choice name for one select field."""
    list_name = form.field(field_name)["list_name"]
    rows = form.choices[form.choices["list_name"] == list_name]
    index = {}
    for col in ("label_en", "label_zh", "name"):
        index.update(dict(zip(_normalise_name(rows[col]), rows["name"])))
    index.pop("", None)
    return index


def _match_choice(normalised: pd.Series, index: dict[str, str]) -> pd.Series:
    """Choice name for normalised text: an exact label/name match, else the one choice whose label
    contains the text or is contained in it (at least 2 characters); ambiguous or no match -> missing."""
    exact = normalised.map(index)
    keys = [k for k in index if len(k) >= 2]

    def contained(text: str):
        hits = {index[k] for k in keys if len(text) >= 2 and (k in text or text in k)}
        return hits.pop() if len(hits) == 1 else None

    todo = exact.isna() & (normalised != "")
    return exact.where(~todo, normalised[todo].map(contained) if todo.any() else exact)


def check_choices(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """select_one answers that are not choice names: recoded when they are a variant of a choice's name
    or label (spacing, width, traditional characters, e.g. 村居 names), otherwise blanked."""
    out = []
    for row, table, context, person in _table_rows(form, households, persons):
        if row.base_type != "select_one":
            continue
        values = table[row.name]
        bad = _present(values) & ~values.isin(form.choice_names(row.name))
        if not bad.any():
            continue
        index = _choice_index(form, row.name)
        matched = _match_choice(_normalise_name(values[bad]), index)
        out.append(_log(table.loc[bad, "uuid"], None if person is None else person[bad], row.name,
                        _text(values[bad]), matched.fillna(""),
                        np.where(matched.notna(), "variant of a choice recoded to its code",
                                 "not one of the form's choices"),
                        np.where(matched.notna(), "choice_variant", "invalid_choice"),
                        np.where(matched.notna(), "change_response", "blank_response"), values[bad].index))
    return pd.concat(out, ignore_index=True) if out else _empty_log()


def _other_pairs(form: Form) -> list[tuple[str, str]]:
    """(select field, its 'other, specify' text field) pairs, read from the text fields' relevance
    ``selected(${q}, 'other')`` or ``${q} = 'other'``."""
    fields = _fields(form)
    pairs = []
    for row in fields[fields["base_type"] == "text"].itertuples(index=False):
        hit = re.fullmatch(r"\s*(?:selected\(\s*\$\{(\w+)\}\s*,\s*'other'\s*\)|\$\{(\w+)\}\s*=\s*'other')\s*",
                           row.relevant or "")
        if hit:
            pairs.append((hit.group(1) or hit.group(2), row.name))
    return pairs


def check_other_text(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """'Other, specify' text that names an existing choice: the choice is selected instead of 'other'
    and the text blanked (cleaningtools ``check_others`` / impactR ``recode_other_parent_from_log``)."""
    out = []
    for select, text in _other_pairs(form):
        for table in (households, persons):
            if text not in table or select not in table:
                continue
            index = {k: n for k, n in _choice_index(form, select).items() if n != "other"}
            matched = _match_choice(_normalise_name(table[text]), index).where(_present(table[text]))
            hit = matched.notna()
            if not hit.any():
                continue
            person = table["person_id"][hit] if "person_id" in table else None
            old = table.loc[hit, select].fillna("")
            if form.field(select)["base_type"] == "select_multiple":
                tokens = old.str.split().map(lambda t: [x for x in t if x != "other"])
                new = [" ".join(sorted(set(t) | {m}, key=form.choice_names(select).index))
                       for t, m in zip(tokens, matched[hit])]
            else:
                new = matched[hit]
            out.append(_log(table.loc[hit, "uuid"], person, select, _text(old), new,
                            "'other' text names an existing choice: recoded", "other_recode", "change_response",
                            old.index))
            out.append(_log(table.loc[hit, "uuid"], person, text, _text(table.loc[hit, text]), None,
                            "'other' text recoded to an existing choice", "other_recode", "blank_response",
                            old.index))
    return pd.concat(out, ignore_index=True) if out else _empty_log()


def check_redactions(raw: RawExport) -> pd.DataFrame:
    """Free-text answers from which ingest removed personal data (the removed text is not kept)."""
    r = raw.redactions
    return _log(r["uuid"], r["person_id"], r["question"], "[personal data not kept]", None, r["issue"],
                "pii_in_text", "no_action", r.index)


def check_conversions(raw: RawExport) -> pd.DataFrame:
    """Numeric answers ingest read from something other than a plain number (full-width digits, an Excel
    date, text that was blanked), so each is in the log with what was read."""
    c = raw.conversions
    return _log(c["uuid"], c["person_id"], c["question"], c["old_value"], c["new_value"], c["issue"],
                "number_format", "no_action", c.index)


def with_duration(raw: RawExport) -> RawExport:
    """The export with ``duration_min`` (end − start in minutes, 0.1 min) after ``end``, when both exist."""
    hh = raw.households
    if "start" not in hh or "end" not in hh or "duration_min" in hh:
        return raw
    minutes = ((hh["end"] - hh["start"]).dt.total_seconds() / 60).round(1)
    hh = hh.copy()
    hh.insert(hh.columns.get_loc("end") + 1, "duration_min", minutes)
    return replace(raw, households=hh)


REMOVAL_CHECKS = ("duplicate_uuid", "soft_duplicate", "duration", "no_consent", "test_submission")


def run_checks(form: Form, raw: RawExport, settings: Settings = Settings(),
               kept: pd.Series | None = None) -> pd.DataFrame:
    """All checks with their default decisions, as one cleaning log (removals first).

    Value-level checks run on the submissions in ``kept`` (uuids not removed), so a removed
    interview does not fill the log with answer-by-answer rows.
    """
    hh, ps = raw.households, raw.persons
    s = settings
    # removal checks in order, each on the submissions the earlier ones keep (an empty no-consent record
    # is not also "too short", and such records would all "match" each other as soft duplicates)
    removal_checks = [
        lambda h, p: check_duplicate_uuid(h),
        lambda h, p: check_test_submissions(form, h, s.test_pattern),
        lambda h, p: check_no_consent(h, s.consent_field, s.consent_value),
        lambda h, p: check_duration(h, s.duration_min, s.duration_max),
        lambda h, p: check_soft_duplicates(form, h, p, s.soft_duplicate_match, s.duplicate_block),
    ]
    found = []
    left = pd.Series(True, index=hh.index)
    for check in removal_checks:
        rows = check(hh[left], ps[ps["uuid"].isin(set(hh.loc[left, "uuid"]))])
        found.append(rows)
        left &= ~hh["uuid"].isin(set(rows.loc[rows["change_type"] == "remove_survey", "uuid"]))
    removals = pd.concat(found, ignore_index=True)
    if kept is None:
        gone = set(removals.loc[removals["change_type"] == "remove_survey", "uuid"])
        kept = ~hh["uuid"].isin(gone)
    keep_uuid = set(hh.loc[kept, "uuid"])
    hh_k, ps_k = hh[kept], ps[ps["uuid"].isin(keep_uuid)]
    values = pd.concat([
        check_choices(form, hh_k, ps_k),
        check_sentinels(form, hh_k, ps_k, s.sentinels),
        check_constraints(form, hh_k, ps_k),
        check_skip_logic(form, hh_k, ps_k),
        check_other_text(form, hh_k, ps_k),
        check_roster(hh_k, ps_k, s),
        check_outliers(form, hh_k, ps_k, s.outlier_sd, s.outlier_min_unique, s.outliers_on_constrained),
        check_redactions(raw)[lambda d: d["uuid"].isin(keep_uuid)],
        check_conversions(raw)[lambda d: d["uuid"].isin(keep_uuid)],
    ], ignore_index=True)
    # one decision per answer cell: the first check in the order above wins (a sentinel 999 is not also
    # blanked as a constraint violation); later rows for the same cell stay as review notes
    cell = ["uuid", "person_id", "question"]
    keyed = values.assign(person_id=values["person_id"].fillna(""))
    later = keyed.duplicated(cell, keep="first") & (keyed["change_type"] != "no_action")
    values.loc[later, "change_type"] = "no_action"
    values.loc[later, "new_value"] = None
    values.loc[later, "issue"] = values.loc[later, "issue"] + " (already handled by an earlier check)"
    return pd.concat([removals, values], ignore_index=True)[LOG_COLUMNS]


# ----- decisions ----------------------------------------------------------------------------------------

def read_decisions(path: str | Path) -> pd.DataFrame:
    """An edited cleaning log (CSV or XLSX, first sheet or sheet 'cleaning_log') as all-text columns."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".xlsx", ".xls"):
            sheets = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False)
            frame = sheets.get("cleaning_log", next(iter(sheets.values())))
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the decisions file ({exc})", file=path) from exc
    missing = [c for c in ("uuid", "question", "change_type") if c not in frame]
    if missing:
        raise ConfigError(f"decisions file lacks column(s) {', '.join(missing)}", file=path, row=1,
                          hint="edit the cleaning_log.csv this stage wrote and pass it back")
    frame = frame.reindex(columns=LOG_COLUMNS, fill_value="")
    bad = ~frame["change_type"].str.strip().isin(CHANGE_TYPES)
    if bad.any():
        raise ConfigError(f"change_type '{frame['change_type'][bad].iloc[0]}' is not one of "
                          f"{', '.join(CHANGE_TYPES)}", file=path, row=int(np.flatnonzero(bad)[0]) + 2,
                          column="change_type")
    return frame.apply(lambda c: c.str.strip())


def apply_decisions(log: pd.DataFrame, decisions: pd.DataFrame | None) -> pd.DataFrame:
    """The log with a person's decisions: rows matching on (uuid, person_id, question, check_id) take the
    person's change_type and new_value; rows the person added are appended (their own changes)."""
    if decisions is None or decisions.empty:
        return log
    key = ["uuid", "person_id", "question", "check_id"]
    left = log.assign(**{k: log[k].fillna("").astype(str) for k in key})
    right = decisions.assign(**{k: decisions[k].fillna("").astype(str) for k in key}).drop_duplicates(key, keep="last")
    merged = left.merge(right[key + ["change_type", "new_value"]], on=key, how="left", suffixes=("", "_person"))
    decided = merged["change_type_person"].notna() & (merged["change_type_person"] != "")
    merged.loc[decided, "change_type"] = merged.loc[decided, "change_type_person"]
    merged.loc[decided, "new_value"] = merged.loc[decided, "new_value_person"].replace("", None)
    added = right.merge(left[key], on=key, how="left", indicator=True)
    added = added[added["_merge"] == "left_only"].drop(columns="_merge")
    out = pd.concat([merged[LOG_COLUMNS], added[LOG_COLUMNS]], ignore_index=True)
    return out.replace({"person_id": {"": None}, "question": {"": None}})


# ----- applying the log ---------------------------------------------------------------------------------

def _cast(values: pd.Series, like: pd.Series) -> pd.Series:
    """Log text cast to the column's type (numbers, times, text)."""
    if pd.api.types.is_datetime64_any_dtype(like):
        return pd.to_datetime(values, errors="coerce")
    if pd.api.types.is_numeric_dtype(like):
        return pd.to_numeric(values, errors="coerce")
    return values.astype(object)


def _rebuild_dummies(form: Form, table: pd.DataFrame, raw_table: pd.DataFrame, changed: set) -> pd.DataFrame:
    """``<name>.<option>`` columns recomputed from the changed select_multiple summaries in ``changed``
    (asked/not asked kept from the raw dummies; a blanked question becomes not asked)."""
    table = table.copy()
    multi = _fields(form).loc[lambda f: f["base_type"] == "select_multiple", "name"]
    for name in [c for c in multi if c in table and c in changed]:
        options = form.choice_names(name)
        cols = [f"{name}.{o}" for o in options if f"{name}.{o}" in table]
        if not cols:
            continue
        asked = raw_table[cols].notna().any(axis=1).reindex(table.index).fillna(False)
        summary = table[name]
        padded = " " + summary.fillna("") + " "
        answered = asked | _present(summary)
        for option in options:
            column = f"{name}.{option}"
            if column in table:
                table[column] = padded.str.contains(f" {option} ", regex=False).astype(float).where(answered)
    return table


def apply_log(form: Form, raw: RawExport, log: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Clean households, clean persons and the deletion log from the raw tables and a decided log."""
    hh, ps = raw.households.copy(), raw.persons.copy()
    remove = log[log["change_type"] == "remove_survey"]
    everyone = remove["uuid"] == "all_data"
    if everyone.any():
        raise ConfigError("remove_survey with uuid 'all_data' would delete every submission")
    changes = log[log["change_type"].isin(["change_response", "blank_response"]) & log["question"].notna()]
    for (question, is_person), rows in changes.groupby([changes["question"], changes["person_id"].notna()]):
        table = ps if is_person else hh
        if question not in table:
            continue
        new = rows["new_value"].where(rows["change_type"] == "change_response", None)
        if (rows["uuid"] == "all_data").any():
            value = new[rows["uuid"] == "all_data"].iloc[-1]
            table[question] = _cast(pd.Series(value, index=table.index), table[question])
            continue
        key = "person_id" if is_person else "uuid"
        target = rows["person_id"] if is_person else rows["uuid"]
        mapping = pd.Series(new.to_numpy(), index=target.to_numpy())
        mapping = mapping[~mapping.index.duplicated(keep="last")]
        hit = table[key].isin(mapping.index)
        updated = _cast(table.loc[hit, key].map(mapping), table[question])
        if table[question].dtype == object or pd.api.types.is_string_dtype(table[question]):
            table[question] = table[question].astype(object)
        table.loc[hit, question] = updated.to_numpy()
    changed = set(changes["question"])
    hh = _rebuild_dummies(form, hh, raw.households, changed)
    ps = _rebuild_dummies(form, ps, raw.persons, changed)

    reasons = remove.groupby("uuid", sort=False).agg(check_id=("check_id", lambda s: ";".join(dict.fromkeys(s))),
                                                     issue=("issue", lambda s: " | ".join(dict.fromkeys(s))))
    deleted = hh[hh["uuid"].isin(reasons.index)]
    deletion = pd.DataFrame({
        "uuid": deleted["uuid"],
        "household_id": deleted["household_id"],
        "enumerator": deleted.get("enumerator"),
        "deviceid": deleted.get("deviceid"),
        "check_id": deleted["uuid"].map(reasons["check_id"]),
        "issue": deleted["uuid"].map(reasons["issue"]),
        "reason": "remove_survey",
    })[DELETION_COLUMNS].reset_index(drop=True)
    clean_hh = hh[~hh["uuid"].isin(reasons.index)].reset_index(drop=True)
    clean_ps = ps[ps["uuid"].isin(set(clean_hh["uuid"]))].reset_index(drop=True)
    return clean_hh, clean_ps, deletion


def review_cleaning(form: Form, raw: RawExport, households: pd.DataFrame, persons: pd.DataFrame,
                    log: pd.DataFrame, deletion: pd.DataFrame) -> pd.DataFrame:
    """Audit as cleaningtools' ``review_cleaning``/``review_cleaning_log``: question or uuid not in the
    data, missing change_type, a change not applied, a deleted survey still present, a uuid both
    deleted and changed. Returns one row per finding (uuid, person_id, question, finding)."""
    findings = []
    questions = set(raw.households.columns) | set(raw.persons.columns)
    known_uuid = set(raw.households["uuid"]) | {"all_data"}
    q = log["question"].fillna("")
    findings.append(log[(q != "") & ~q.isin(questions)].assign(finding="question_does_not_exist"))
    findings.append(log[~log["uuid"].isin(known_uuid)].assign(finding="uuid_does_not_exist"))
    findings.append(log[~log["change_type"].isin(CHANGE_TYPES)].assign(finding="na_in_change_type"))
    findings.append(deletion[deletion["uuid"].isin(households["uuid"])].assign(finding="deleted_survey_present"))
    changes = log[log["change_type"].isin(["change_response", "blank_response"]) & q.isin(questions)
                  & ~log["uuid"].isin(set(deletion["uuid"]) | {"all_data"})]
    where = {True: pd.Index(persons["person_id"]), False: pd.Index(households["uuid"])}
    for (question, is_person), rows in changes.groupby([changes["question"], changes["person_id"].notna()]):
        table = persons if is_person else households
        if question not in table:
            continue
        target = rows["person_id"] if is_person else rows["uuid"]
        last = rows.assign(_target=target.to_numpy()).drop_duplicates("_target", keep="last")
        position = where[bool(is_person)].get_indexer(last["_target"])
        present = _text(table[question].iloc[np.maximum(position, 0)]).to_numpy() if len(table) else ""
        actual = np.where(position >= 0, present, "<row missing>")
        wanted = last["new_value"].where(last["change_type"] == "change_response", "").fillna("")
        wanted = _text(_cast(wanted.replace("", None), table[question])).to_numpy()
        differs = actual != wanted
        findings.append(last[differs].drop(columns="_target").assign(finding="change_not_applied"))
    out = pd.concat(findings, ignore_index=True) if findings else pd.DataFrame()
    return out.reindex(columns=["uuid", "person_id", "question", "finding"]).reset_index(drop=True)


# ----- the stage ----------------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    names = ["leliu-needs", "pandas", "numpy", "scipy", "pyarrow", "openpyxl", "pyreadstat", "pyxform",
             "pyyaml", "matplotlib", "seaborn", "papermill"]
    out = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def data_dictionary(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """One row per clean column: table, variable, labels (zh/en), type, values, universe (from the form)."""
    book = form.codebook().drop(columns="pii")
    keys = pd.DataFrame({
        "variable": ["uuid", "household_id", "row", "person_id", "member", "duration_min"],
        "label_zh": ["提交编号", "住户编号（假名化）", "原始文件中的行号", "成员编号（假名化）", "成员序号",
                     "访问时长（分钟）"],
        "label_en": ["submission uuid", "household key (pseudonymous)", "row in the raw file",
                     "person key (pseudonymous)", "member number in the household",
                     "interview length (minutes, end − start)"],
        "type": ["text", "text", "integer", "text", "integer", "decimal"],
        "values": "", "universe": "all"})
    parts = []
    for name, table in (("households", households), ("persons", persons)):
        rows = pd.concat([keys, book], ignore_index=True).drop_duplicates("variable")
        rows = rows.set_index("variable").reindex([c for c in table.columns]).reset_index()
        parts.append(rows.assign(table=name))
    out = pd.concat(parts, ignore_index=True)
    return out[["table", "variable", "label_zh", "label_en", "type", "values", "universe"]].fillna("")


def contract_schemas(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> dict:
    """pandera schemas of the clean tables (docs/contracts.md), built from the form.

    Keys are unique and never missing; every select_one answer is one of the form's choice names; every
    select_multiple option column holds 0, 1 or missing; every person belongs to a clean household.
    """
    import pandera.pandas as pa

    def columns(table: pd.DataFrame, key: str) -> dict:
        cols = {key: pa.Column(None, nullable=False, unique=True)}
        for question in form.survey.loc[form.survey["base_type"] == "select_one", "name"]:
            if question in table.columns:
                cols[question] = pa.Column(None, pa.Check.isin(form.choice_names(question)), nullable=True)
        for question in form.survey.loc[form.survey["base_type"] == "select_multiple", "name"]:
            for column in table.columns[table.columns.str.startswith(f"{question}.")]:
                cols[column] = pa.Column(None, pa.Check.isin([0, 1]), nullable=True)
        return cols

    known = set(households["household_id"])
    member = pa.Column(None, pa.Check(lambda ids: ids.isin(known), error="belongs to a clean household"),
                       nullable=False)
    return {
        "households": pa.DataFrameSchema(columns(households, "household_id")),
        "persons": pa.DataFrameSchema({**columns(persons, "person_id"), "household_id": member}),
    }


def validate_clean(form: Form, households: pd.DataFrame, persons: pd.DataFrame, source: Path) -> None:
    """Check the clean tables against :func:`contract_schemas`; the first failure names table, column and row.

    Default rules never break these; an edited decision whose ``new_value`` is not one of the form's
    choices does, and is reported here instead of reaching the estimates.
    """
    import pandera.pandas as pa

    for name, table in (("households", households), ("persons", persons)):
        try:
            contract_schemas(form, households, persons)[name].validate(table, lazy=True)
        except pa.errors.SchemaErrors as errors:
            first = errors.failure_cases.iloc[0]
            row = first["index"]
            uuid = table["uuid"].iloc[int(row)] if "uuid" in table.columns and pd.notna(row) else None
            raise ConfigError(f"clean {name} table breaks the contract: value {first['failure_case']!r} fails "
                              f"{first['check']}" + (f" (uuid {uuid})" if uuid else ""), file=source,
                              column=str(first["column"]), row=None if pd.isna(row) else int(row) + 2,
                              hint="a decision's new_value must be one of the form's choice names") from None


def _write(out_dir: Path, result: CleanResult, form_path: Path, decisions: Path | None) -> None:
    """Write every output into a temporary folder beside ``out_dir/clean`` and move it into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "clean"
    tmp = Path(tempfile.mkdtemp(prefix=".clean-", dir=out_dir))
    try:
        for name, table in (("households", result.households), ("persons", result.persons)):
            table.to_parquet(tmp / f"{name}.parquet", index=False)
            table.to_csv(tmp / f"{name}.csv", index=False, encoding="utf-8", date_format="%Y-%m-%dT%H:%M:%S")
        result.cleaning_log.to_csv(tmp / "cleaning_log.csv", index=False, encoding="utf-8")
        result.deletion_log.to_csv(tmp / "deletion_log.csv", index=False, encoding="utf-8")
        data_dictionary(load_form(form_path), result.households, result.persons).to_csv(
            tmp / "data_dictionary.csv", index=False, encoding="utf-8")
        provenance = {
            "simulated": bool(result.raw.provenance.get("simulated", False)),
            "source_format": result.raw.source_format,
            "raw_sha256": result.raw.checksums,
            "form_sha256": {p.name: sha256(p) for p in ([form_path] if form_path.is_file()
                                                        else sorted(form_path.glob("*.csv")))},
            "decisions_sha256": {decisions.name: sha256(decisions)} if decisions else {},
            "unmapped_columns": list(result.raw.unmapped_columns),
            "missing_columns": list(result.raw.missing_columns),
            "counts": result.counts,
            "packages": _versions(),
        }
        (tmp / "provenance.json").write_text(json.dumps(provenance, ensure_ascii=False, indent=2, sort_keys=True),
                                             encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def clean_raw(form: Form, raw: RawExport, decisions: pd.DataFrame | None = None,
              settings: Settings = Settings()) -> CleanResult:
    """Checks, decisions, clean tables and review for an already-read export (no files written)."""
    raw = with_duration(raw)
    log = apply_decisions(run_checks(form, raw, settings), decisions)
    removed = set(log.loc[log["change_type"] == "remove_survey", "uuid"])
    default_removed = set(run_checks(form, raw, settings).pipe(
        lambda d: d.loc[d["change_type"] == "remove_survey", "uuid"])) if decisions is not None else removed
    if removed != default_removed:  # a person kept or removed interviews: their answers need checking too
        kept = ~raw.households["uuid"].isin(removed)
        log = apply_decisions(run_checks(form, raw, settings, kept=kept), decisions)
    households, persons, deletion = apply_log(form, raw, log)
    review = review_cleaning(form, raw, households, persons, log, deletion)
    n_raw, n_clean, n_deleted = len(raw.households), len(households), len(deletion)
    if n_raw != n_clean + n_deleted:
        raise AssertionError(f"row accounting broken: {n_raw} raw != {n_clean} clean + {n_deleted} deleted")
    if deletion["issue"].fillna("").eq("").any():
        raise AssertionError("a deleted submission has no reason")
    deleted_persons = raw.persons["uuid"].isin(set(deletion["uuid"])).sum()
    if len(raw.persons) != len(persons) + deleted_persons:
        raise AssertionError("person accounting broken")
    counts = {"raw_households": n_raw, "clean_households": n_clean, "deleted_households": n_deleted,
              "raw_persons": len(raw.persons), "clean_persons": len(persons),
              "deleted_persons": int(deleted_persons)}
    return CleanResult(households, persons, log.reset_index(drop=True), deletion, review, raw, None, counts)


def clean_survey(form_path: str | Path, data_path: str | Path, out_dir: str | Path,
                 decisions: str | Path | None = None, settings: Settings = Settings()) -> CleanResult:
    """Read ``data_path`` with the form at ``form_path``, clean it, and write ``<out_dir>/clean/``.

    Raises AnalysisError for unusable input (nothing is written then), and when the review finds a
    decision that cannot be applied (a question or uuid that does not exist).
    """
    form_path, data_path, out_dir = Path(form_path), Path(data_path), Path(out_dir)
    form = load_form(form_path)
    raw = read_export(data_path, form)
    decided = read_decisions(decisions) if decisions else None
    result = clean_raw(form, raw, decided, settings)
    user_errors = result.review[result.review["finding"].isin(["question_does_not_exist", "uuid_does_not_exist"])]
    if len(user_errors):
        first = user_errors.iloc[0]
        raise ConfigError(f"{first['finding'].replace('_', ' ')}: uuid {first['uuid']}, question "
                          f"{first['question']}", file=decisions or data_path, column="question",
                          hint="correct or delete that row of the decisions file")
    if len(result.review):
        first = result.review.iloc[0]
        raise AssertionError(f"review_cleaning found {len(result.review)} problem(s), first: {first.to_dict()}")
    validate_clean(form, result.households, result.persons, Path(decisions) if decisions else data_path)
    result.out_dir = out_dir / "clean"
    _write(out_dir, result, form_path, Path(decisions) if decisions else None)
    return result


def fault_detection(result: CleanResult, faults: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Share of planted faults found, by kind, and share of fault-free submissions flagged.

    A fault counts as found when the cleaning log removes its submission (``#n`` copies count as their
    uuid), or has a row for its question in that submission, or (roster faults) for that member. Returns (per-kind table, summary
    with the false-positive rate over fault-free submissions: any log row, and any action).
    """
    log = result.cleaning_log.assign(base=result.cleaning_log["uuid"].str.replace(r"#\d+$", "", regex=True))
    whole = set(log.loc[log["change_type"] == "remove_survey", "base"])
    cells = set(zip(log["base"], log["question"].fillna("")))
    people = log[log["person_id"].notna()]
    members = set(zip(people["base"], people["person_id"].str.extract(r"-(\d+)$")[0].astype(int)))
    faults = faults.assign(field=faults["field"].fillna("").astype(str))
    member = pd.to_numeric(faults["member"], errors="coerce") if "member" in faults else pd.Series(np.nan,
                                                                                                 index=faults.index)
    found = [(u in whole) or ((u, f) in cells) or (pd.notna(m) and (u, int(m)) in members)
             for u, f, m in zip(faults["uuid"], faults["field"], member)]
    faults = faults.assign(found=found, member=member.fillna(0))
    # one fault = one planted event: a kind in a submission (and member); some change two cells, e.g. an
    # out-of-range caregiving hours value plus the 'yes' that makes the question relevant
    events = faults.groupby(["kind", "uuid", "member"], as_index=False)["found"].any()
    by_kind = events.groupby("kind").agg(faults=("found", "size"), found=("found", "sum")).reset_index()
    by_kind["rate"] = by_kind["found"] / by_kind["faults"]
    raw_uuid = result.raw.households["uuid"].str.replace(r"#\d+$", "", regex=True)
    clean_ids = set(raw_uuid) - set(faults["uuid"])
    flagged = clean_ids & set(log["base"])
    acted = clean_ids & set(log.loc[log["change_type"] != "no_action", "base"])
    summary = {"fault_free_submissions": len(clean_ids), "flagged": len(flagged),
               "false_positive_rate": len(flagged) / max(len(clean_ids), 1),
               "changed": len(acted), "false_change_rate": len(acted) / max(len(clean_ids), 1)}
    return by_kind, summary
