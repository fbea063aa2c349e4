"""Checks of single answers, driven by the form and the settings: choice lists and their variants,
sentinel codes, constraints, skip logic, required answers, outliers, the roster, "other" texts, the
settings' own logic checks, and what ingest noted (personal data removed, numbers read from text).

Each check returns cleaning-log rows with its default decision; what it could not check goes to
``notes`` (see :func:`analysis.clean.checks.skip`).
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from difflib import SequenceMatcher

import numpy as np
import pandas as pd

from analysis.clean.checks import skip
from analysis.clean.log import empty_log, log_rows, present, text
from analysis.clean.settings import Choices, Outliers, Roster, Settings
from analysis.distinct import each_distinct
from analysis.errors import ConfigError
from analysis.form_logic import ExpressionError, evaluate_bool, references
from analysis.ingest import RawExport
from analysis.instrument import METADATA_TYPES, Form

# Traditional characters that commonly appear in Cantonese-area place names and in the project's choice
# labels, mapped to their simplified forms (Unicode Unihan kSimplifiedVariant). A real survey with
# other names may need entries added here; unmatched variants are logged for review, never guessed.
TRADITIONAL = dict(
    zip(
        "黃連龍沖鶴華雲東廣區會劃長務義隊韋鄉鎮陳蘭灣島堯園圍橋們興豐鳳麗馮葉藥餘飯館護殘療輔導聯業練學習閱讀課補親職調經濟幫來適應訪問間醫體娛樂員湧愛鄰裡裏寧順進與參歲齡礙託顧個戶頭屬視聽說記憶語溝難對於這為無兒寫費錢買賣電話號碼車門開關農場廠鄧劉張楊吳趙鄭謝羅許蘇盧蔣賈鄒飲養診復師講營訓線熱",
        "黄连龙冲鹤华云东广区会划长务义队韦乡镇陈兰湾岛尧园围桥们兴丰凤丽冯叶药余饭馆护残疗辅导联业练学习阅读课补亲职调经济帮来适应访问间医体娱乐员涌爱邻里里宁顺进与参岁龄碍托顾个户头属视听说记忆语沟难对于这为无儿写费钱买卖电话号码车门开关农场厂邓刘张杨吴赵郑谢罗许苏卢蒋贾邹饮养诊复师讲营训线热",
    )
)
TRADITIONAL_TABLE = str.maketrans(TRADITIONAL)


MOSTLY_UNANSWERED = 0.5  # a required question empty in more than this share of its interviews: a form matter


def normalise_name(values: pd.Series) -> pd.Series:
    """Text for matching names/labels: NFKC width folding, traditional → simplified for the characters in
    :data:`TRADITIONAL`, no spaces or punctuation, lower case."""
    text = values.fillna("").astype(str)

    def fold(distinct) -> np.ndarray:
        folded = pd.Series([unicodedata.normalize("NFKC", s) for s in distinct], dtype=object)
        folded = folded.str.translate(TRADITIONAL_TABLE)
        folded = folded.str.replace(r"[\s\u3000·.,，。、'\"()（）\-_/]+", "", regex=True).str.lower()
        return folded.to_numpy(dtype=object)

    return pd.Series(each_distinct(text, fold, ""), index=values.index, dtype=text.dtype)


_last_context: list = []  # [households ref, persons ref, context]: the checks of one run share it


def person_context(households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """Persons with their household's answers alongside (person columns win), for repeat expressions. The
    last one made is kept while its two tables live (the checks read, never change, the tables)."""
    if _last_context and _last_context[0]() is households and _last_context[1]() is persons:
        return _last_context[2]
    extra = [c for c in households.columns if c not in persons.columns or c == "uuid"]
    context = persons.merge(households[extra], on="uuid", how="left", suffixes=("", "_hh")).set_axis(
        persons.index
    )
    _last_context[:] = [weakref.ref(households), weakref.ref(persons), context]
    for table in (households, persons):  # the context goes with either table
        weakref.finalize(table, _forget_context)
    return context


def _forget_context() -> None:
    if _last_context and (_last_context[0]() is None or _last_context[1]() is None):
        _last_context.clear()


def table_rows(form: Form, households: pd.DataFrame, persons: pd.DataFrame, with_context: bool = True):
    """(field row, table frame, context frame, person_id series or None) for every answer column; the
    context of a person's answer is None unless ``with_context``."""
    context = person_context(households, persons) if with_context else None
    for row in form.data_fields().itertuples(index=False):
        if row.repeat is None and row.name in households:
            yield row, households, households, None
        elif row.repeat is not None and row.name in persons:
            yield row, persons, context, persons["person_id"]


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else empty_log()


def _condition(
    expression: str,
    context: pd.DataFrame,
    notes: list | None,
    check_id: str,
    what: str,
    current: pd.Series | None = None,
    question: str = "",
) -> pd.Series | None:
    """An expression evaluated row by row, or None (with a note) when it cannot be evaluated here."""
    try:
        return evaluate_bool(expression, context, current=current)
    except ExpressionError as error:
        skip(notes, check_id, f"{what} not evaluated: {error.problem}", status="partial", question=question)
        return None


# ----- choice lists -----------------------------------------------------------------------------------


def choice_index(form: Form, field_name: str) -> dict[str, str]:
    """Normalised choice label (any language) or name -> choice name, for one select field."""
    list_name = form.field(field_name)["list_name"]
    rows = form.choices[form.choices["list_name"] == list_name]
    index = {}
    for col in [c for c in rows.columns if c.startswith("label")] + ["name"]:
        index.update(dict(zip(normalise_name(rows[col]), rows["name"])))
    index.pop("", None)
    return index


def match_choice(
    normalised: pd.Series, index: dict[str, str], min_length: int = 3, similarity: float = 0.85
) -> pd.Series:
    """Choice name for normalised text: an exact label/name match; else the one choice whose label
    contains the text or is contained in it, or failing that is at least ``similarity`` alike
    (difflib ratio); texts and labels shorter than ``min_length`` never match this way (so 'a4' is not
    read as 'al_jazeera4'). Ambiguous or no match -> missing."""
    exact = normalised.map(index)
    keys = [k for k in index if len(k) >= min_length]

    def fuzzy(value: str):
        if len(value) < min_length:
            return None
        hits = {index[k] for k in keys if k in value or value in k}
        if not hits:
            scores: dict[str, float] = {}
            for k in keys:
                scores[index[k]] = max(scores.get(index[k], 0.0), SequenceMatcher(None, value, k).ratio())
            hits = {n for n, s in scores.items() if s >= similarity}
        return hits.pop() if len(hits) == 1 else None

    todo = exact.isna() & (normalised != "")
    if not todo.any():
        return exact
    distinct = normalised[todo].unique()
    return exact.where(~todo, normalised[todo].map(dict(zip(distinct, map(fuzzy, distinct), strict=True))))


def _invalid_share_error(
    column: str, list_name: str, values: pd.Series, answered: int, share: float, row: int | None
) -> ConfigError:
    examples = ", ".join(repr(v) for v in values.value_counts().index[:5])
    return ConfigError(
        f"{share:.0%} of the answers ({len(values)} of {answered}) are not in the choice list "
        f"'{list_name}' (e.g. {examples}); blanking them would empty most of the column",
        column=column,
        row=row,
        hint=f"fix the form's choice list, or set choices.columns.{column}.action "
        f"to keep, blank or map (with a recode table) in the cleaning settings",
    )


def _file_row(households: pd.DataFrame, uuid: str) -> int | None:
    """The row of a submission in the raw export as a spreadsheet shows it (header = row 1)."""
    rows = households.set_index("uuid")["row"] if "row" in households else pd.Series(dtype=float)
    return int(rows[uuid]) + 1 if uuid in rows.index else None


def flagged(table, person, values, hit, question, issue, check, action) -> pd.DataFrame:
    """Log rows (:func:`log_rows`) for the answers ``hit`` of ``values``, a column of ``table`` (``person``:
    the roster keys when ``table`` is the roster, else None)."""
    return log_rows(
        table.loc[hit, "uuid"],
        None if person is None else person[hit],
        question,
        text(values[hit]),
        None,
        issue,
        check,
        action,
        values[hit].index,
    )


def check_choices(
    form: Form,
    households: pd.DataFrame,
    persons: pd.DataFrame,
    settings: Choices | None = None,
    notes: list | None = None,
) -> pd.DataFrame:
    """select_one answers that are not choice names: recoded when they are a variant of a choice's name or
    label (spacing, width, traditional characters, e.g. 村居 names; see :func:`match_choice`), otherwise
    blanked. A column where more than ``max_invalid_share`` of the answers match nothing stops the cleaning
    (ConfigError) unless the settings say keep, blank or map for it."""
    settings = settings or Choices()
    out = []
    for row, table, _, person in table_rows(form, households, persons, with_context=False):
        if row.base_type != "select_one":
            continue
        values = table[row.name]
        answered = present(values)
        bad = answered & ~values.isin(form.choice_names(row.name))
        if not bad.any():
            continue
        rule = settings.columns.get(row.name)
        old = text(values[bad])
        matched = match_choice(
            normalise_name(values[bad]),
            choice_index(form, row.name),
            settings.min_length,
            settings.similarity,
        )
        if rule is not None and rule.action == "map":
            matched = old.map(rule.recode).where(old.isin(list(rule.recode)), matched)
        unmatched = matched.isna()
        share = unmatched.sum() / max(int(answered.sum()), 1)
        if (
            rule is None
            and unmatched.sum() >= settings.min_invalid_count
            and share > settings.max_invalid_share
        ):
            first = table.loc[unmatched.index[unmatched][0], "uuid"]
            raise _invalid_share_error(
                row.name,
                row.list_name,
                old[unmatched],
                int(answered.sum()),
                share,
                _file_row(households, first),
            )
        if rule is not None and rule.action == "keep":  # the person's decision, stated once in the summary
            skip(
                notes,
                "invalid_choice",
                f"{int(unmatched.sum())} answers outside the choice list kept as they "
                "are (cleaning settings)",
                status="partial",
                question=row.name,
            )
            bad &= ~values.index.isin(unmatched.index[unmatched])
            matched, old = matched[~unmatched], old[~unmatched]
            unmatched = unmatched[~unmatched]
        out.append(
            log_rows(
                table.loc[bad, "uuid"],
                None if person is None else person[bad],
                row.name,
                old,
                matched.fillna(""),
                np.where(
                    ~unmatched, "variant of a choice recoded to its code", "not one of the form's choices"
                ),
                np.where(~unmatched, "choice_variant", "invalid_choice"),
                np.where(~unmatched, "change_response", "blank_response"),
                values[bad].index,
            )
        )
    return _concat(out)


# ----- numbers, constraints, relevance ----------------------------------------------------------------


def check_sentinels(
    form: Form,
    households: pd.DataFrame,
    persons: pd.DataFrame,
    codes: tuple | list = (99, 999, 88, 888),
    notes: list | None = None,
) -> pd.DataFrame:
    """Sentinel codes (99, 999, 88, 888) in numeric answers. Blanked when the form's constraint rules the
    value out or the field has no constraint; kept for review when the value is plausible (age 88)."""
    out = []
    for row, table, context, person in table_rows(form, households, persons):
        if row.base_type not in ("integer", "decimal"):
            continue
        values = table[row.name]
        hit = values.isin(list(codes))
        if not hit.any():
            continue
        allowed = (  # the constraint is read row by row: evaluated on the sentinel rows only
            _condition(row.constraint, context[hit], notes, "sentinel", "constraint", values[hit], row.name)
            if row.constraint
            else None
        )
        allowed = pd.Series(False, index=values.index[hit]) if allowed is None else allowed
        action = np.where(allowed, "no_action", "blank_response")
        out.append(
            flagged(
                table,
                person,
                values,
                hit,
                row.name,
                "possible sentinel code (don't know / refused)",
                "sentinel",
                action,
            )
        )
    return _concat(out)


def check_constraints(
    form: Form, households: pd.DataFrame, persons: pd.DataFrame, notes: list | None = None
) -> pd.DataFrame:
    """Answers that break the form's ``constraint``. Numbers and selects are blanked; text answers
    (codes typed by hand) are flagged for review. A constraint that cannot be evaluated is noted."""
    out = []
    for row, table, context, person in table_rows(form, households, persons):
        if not row.constraint:
            continue
        values = table[row.name]
        ok = _condition(row.constraint, context, notes, "constraint", "constraint", values, row.name)
        if ok is None:
            continue
        bad = present(values) & ~ok
        if not bad.any():
            continue
        action = "no_action" if row.base_type == "text" else "blank_response"
        out.append(
            flagged(
                table,
                person,
                values,
                bad,
                row.name,
                f"constraint violated: {row.constraint}",
                "constraint",
                action,
            )
        )
    return _concat(out)


def check_skip_logic(
    form: Form, households: pd.DataFrame, persons: pd.DataFrame, notes: list | None = None
) -> pd.DataFrame:
    """Answers present where the form's relevance (own and enclosing groups') is false: blanked."""
    out = []
    for row, table, context, person in table_rows(form, households, persons):
        if not row.relevant_all or row.base_type in METADATA_TYPES:
            continue
        values = table[row.name]
        relevant = _condition(row.relevant_all, context, notes, "skip_logic", "relevance", question=row.name)
        if relevant is None:
            continue
        bad = present(values) & ~relevant
        if not bad.any():
            continue
        out.append(
            flagged(
                table,
                person,
                values,
                bad,
                row.name,
                f"answered although not relevant: {row.relevant_all}",
                "skip_logic",
                "blank_response",
            )
        )
    return _concat(out)


def check_required(
    form: Form, households: pd.DataFrame, persons: pd.DataFrame, notes: list | None = None
) -> pd.DataFrame:
    """Required questions left unanswered although shown: XLSForm ``required`` means "must answer when
    shown" (relevance true), so an empty required answer where the question was not shown is fine, and a
    question absent from the export is listed as absent, not flagged here. Flagged for review; a question
    unanswered in most interviews where it was shown (:data:`MOSTLY_UNANSWERED`) points at the form
    version rather than at the interviews, and is noted once in the check summary instead."""
    out = []
    for row, table, context, person in table_rows(form, households, persons):
        if not row.required or row.pii or row.base_type in METADATA_TYPES | {"calculate", "note"}:
            continue
        values = table[row.name]
        missing = ~present(values)
        if not missing.any():
            continue
        if row.relevant_all:
            shown = _condition(row.relevant_all, context, notes, "required", "relevance", question=row.name)
            if shown is None:
                continue
            missing &= shown
        shown_rows = int(shown.sum()) if row.relevant_all else len(values)
        if missing.sum() > MOSTLY_UNANSWERED * max(shown_rows, 1):
            skip(
                notes,
                "required",
                "unanswered in most interviews where shown (a form version without it?)",
                status="partial",
                question=row.name,
            )
        elif missing.any():
            out.append(
                log_rows(
                    table.loc[missing, "uuid"],
                    None if person is None else person[missing],
                    row.name,
                    "",
                    None,
                    "required question not answered although it was shown",
                    "required",
                    "no_action",
                    values[missing].index,
                )
            )
    return _concat(out)


def _outlier_fields(form: Form, settings: Outliers, notes: list | None) -> set[str]:
    fields = form.data_fields()
    numeric = fields[fields["base_type"].isin(["integer", "decimal"])]
    if not settings.include_constrained:
        numeric = numeric[numeric["constraint"] == ""]
    names = set(numeric["name"]) if settings.fields is None else set(settings.fields)
    unknown = sorted(n for n in names - set(fields["name"]))
    if unknown:
        skip(notes, "outlier", f"outlier fields not in the form: {', '.join(unknown)}", status="partial")
    return names - set(settings.exclude)


def check_outliers(
    form: Form,
    households: pd.DataFrame,
    persons: pd.DataFrame,
    settings: Outliers | None = None,
    notes: list | None = None,
) -> pd.DataFrame:
    """Numeric answers far from the rest (cleaningtools ``check_outliers``): beyond ``sd`` standard
    deviations from the mean on the raw and the log(x+1) scale, or beyond ``iqr_k`` interquartile ranges
    outside the quartiles. Fields with fewer than ``min_unique`` distinct values are skipped. A form
    constraint is a hard range, an outlier a soft one, so constrained fields are included by default.
    Outliers may be true, so they are flagged (no_action) for a person to decide."""
    settings = settings or Outliers()
    wanted = _outlier_fields(form, settings, notes)
    out = []
    for row, table, _, person in table_rows(form, households, persons, with_context=False):
        if row.name not in wanted or row.base_type not in ("integer", "decimal"):
            continue
        values = table[row.name].astype(float)
        if values.nunique() < settings.min_unique:
            continue
        if settings.method == "sd":
            scales = (("normal", values), ("log", np.log1p(values.where(values >= 0))))
            flags = [(scale, ((x - x.mean()) / x.std()).abs() > settings.sd) for scale, x in scales]
        else:
            q1, q3 = values.quantile(0.25), values.quantile(0.75)
            spread = settings.iqr_k * (q3 - q1)
            flags = [("interquartile", (values < q1 - spread) | (values > q3 + spread))]
        for scale, bad in flags:
            if bad.any():
                out.append(
                    flagged(
                        table,
                        person,
                        values,
                        bad,
                        row.name,
                        f"outlier ({scale} distribution)",
                        "outlier",
                        "no_action",
                    )
                )
    return _concat(out)


# ----- the roster -------------------------------------------------------------------------------------


def check_roster(
    households: pd.DataFrame,
    persons: pd.DataFrame,
    roster: Roster | None = None,
    size_field: str | None = None,
    notes: list | None = None,
) -> pd.DataFrame:
    """Household roster against the household answers: number of members vs the stated household size
    (the roster wins: size recoded), not exactly one head, a head younger than ``min_head_age``, a
    child or grandchild not younger than the head, a parent not older (flagged for review)."""
    roster = roster or Roster()
    out = []
    if not size_field:
        skip(notes, "roster_size", "no household-size field set (settings design.household_size)")
    elif size_field not in households:
        skip(notes, "roster_size", f"household-size field '{size_field}' is not in the export")
    elif not len(persons):
        skip(notes, "roster_size", "the export has no roster rows")
    else:
        counted = persons.groupby("uuid").size().reindex(households["uuid"]).fillna(0).to_numpy()
        stated = households[size_field]
        bad = stated.notna() & (counted > 0) & (stated.to_numpy() != counted)
        out.append(
            log_rows(
                households.loc[bad, "uuid"],
                None,
                size_field,
                text(stated[bad]),
                pd.Series(counted, index=households.index)[bad].astype(int).astype(str),
                "household size differs from the number of people in the roster",
                "roster_size",
                "change_response",
                households.index[bad],
            )
        )
    relation, age_field = roster.relation, roster.age
    if not relation or relation not in persons:
        skip(
            notes,
            "roster_heads",
            f"relation field '{relation}' is not in the export"
            if relation
            else "no relation-to-head field set (settings roster.relation)",
        )
        return _concat(out)
    is_head = persons[relation] == roster.head
    heads = is_head.groupby(persons["uuid"]).sum()
    wrong = heads[heads != 1]
    out.append(
        log_rows(
            wrong.index,
            None,
            relation,
            wrong.astype(int).astype(str),
            None,
            "roster does not have exactly one household head",
            "roster_heads",
            "no_action",
        )
    )
    if not age_field or age_field not in persons:
        skip(
            notes,
            "roster_generation",
            f"age field '{age_field}' is not in the export"
            if age_field
            else "no age field set (settings roster.age)",
        )
        return _concat(out)
    age = persons[age_field]
    young = is_head & (age < roster.min_head_age)
    out.append(
        log_rows(
            persons.loc[young, "uuid"],
            persons.loc[young, "person_id"],
            relation,
            text(persons.loc[young, relation]),
            None,
            f"household head younger than {roster.min_head_age:g}",
            "roster_child_head",
            "no_action",
            persons.index[young],
        )
    )
    head_age = age.where(is_head).groupby(persons["uuid"]).transform("max")
    kin = persons[relation]
    wrong = (kin.isin(roster.younger_than_head) & (age >= head_age)) | (
        kin.isin(roster.older_than_head) & (age <= head_age)
    )
    out.append(
        log_rows(
            persons.loc[wrong, "uuid"],
            persons.loc[wrong, "person_id"],
            age_field,
            text(age[wrong]),
            None,
            "age does not fit the relationship to the household head (a child not younger, "
            "or a parent not older, than the head)",
            "roster_generation",
            "no_action",
            persons.index[wrong],
        )
    )
    return _concat(out)


# ----- "other, specify" -------------------------------------------------------------------------------

OTHER_RELEVANCE = re.compile(
    r"\s*(?:selected\(\s*\$\{(\w+)\}\s*,\s*'(\w+)'\s*\)|\$\{(\w+)\}\s*=\s*'(\w+)')\s*"
)


def other_pairs(form: Form) -> list[tuple[str, str, str]]:
    """(select field, its 'other, specify' text field, the 'other' choice) triples, read from the text
    fields' relevance ``selected(${q}, 'other')`` or ``${q} = 'other'`` (any choice name containing
    'other', e.g. 'other_specify')."""
    fields = form.data_fields()
    names = set(fields["name"])
    triples = []
    for row in fields[fields["base_type"] == "text"].itertuples(index=False):
        hit = OTHER_RELEVANCE.fullmatch(row.relevant or "")
        if hit:
            select, option = hit.group(1) or hit.group(3), hit.group(2) or hit.group(4)
            if select in names and "other" in option.lower():
                triples.append((select, row.name, option))
    return triples


def check_other_text(
    form: Form, households: pd.DataFrame, persons: pd.DataFrame, settings: Choices | None = None
) -> pd.DataFrame:
    """'Other, specify' text that names an existing choice: the choice is selected instead of 'other' (in
    its place: the answer order is kept) and the text blanked (cleaningtools ``check_others`` / impactR
    ``recode_other_parent_from_log``)."""
    settings = settings or Choices()
    out = []
    for select, other_text, other in other_pairs(form):
        for table in (households, persons):
            if other_text not in table or select not in table:
                continue
            index = {k: n for k, n in choice_index(form, select).items() if n != other}
            matched = match_choice(
                normalise_name(table[other_text]), index, settings.min_length, settings.similarity
            ).where(present(table[other_text]))
            hit = matched.notna()
            if not hit.any():
                continue
            person = table["person_id"][hit] if "person_id" in table else None
            old = table.loc[hit, select].fillna("")
            if form.field(select)["base_type"] == "select_multiple":
                new = [
                    " ".join(dict.fromkeys(m if x == other else x for x in t.split()))
                    if other in t.split()
                    else " ".join(t.split() + [m] * (m not in t.split()))
                    for t, m in zip(old, matched[hit])
                ]
            else:
                new = matched[hit]
            out.append(
                log_rows(
                    table.loc[hit, "uuid"],
                    person,
                    select,
                    text(old),
                    new,
                    "'other' text names an existing choice: recoded",
                    "other_recode",
                    "change_response",
                    old.index,
                )
            )
            out.append(
                log_rows(
                    table.loc[hit, "uuid"],
                    person,
                    other_text,
                    text(table.loc[hit, other_text]),
                    None,
                    "'other' text recoded to an existing choice",
                    "other_recode",
                    "blank_response",
                    old.index,
                )
            )
    return _concat(out)


def other_texts(form: Form, households: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """Every 'other, specify' answer, for a person to review (uuid, person_id, question, text, select
    question, its answer)."""
    rows = []
    for select, other_text, _ in other_pairs(form):
        for table in (households, persons):
            if other_text not in table:
                continue
            given = present(table[other_text])
            rows.append(
                pd.DataFrame(
                    {
                        "uuid": table.loc[given, "uuid"],
                        "person_id": table.loc[given, "person_id"] if "person_id" in table else None,
                        "question": other_text,
                        "text": table.loc[given, other_text],
                        "select_question": select,
                        "select_answer": table.loc[given, select] if select in table else None,
                    }
                )
            )
    columns = ["uuid", "person_id", "question", "text", "select_question", "select_answer"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


# ----- the settings' logic checks ---------------------------------------------------------------------


def check_logic(
    households: pd.DataFrame,
    persons: pd.DataFrame,
    settings: Settings,
    actions: tuple = ("no_action", "blank_response"),
    notes: list | None = None,
) -> pd.DataFrame:
    """The settings' logic checks (cleaningtools ``check_logical``): each XLSForm-style expression true
    for a suspect answer. Person fields are evaluated per roster member with the household's answers
    alongside. A check whose field is not in the export is noted, not run."""
    out = []
    for check in settings.logic_checks:
        if check.action not in actions:
            continue
        refs = references(check.expression)
        absent = sorted(r for r in refs if r not in households and r not in persons)
        if absent:
            skip(notes, f"logic:{check.id}", f"field(s) {', '.join(absent)} not in the export")
            continue
        on_persons = any(r in persons and r not in households for r in refs)
        table = persons if on_persons else households
        context = person_context(households, persons) if on_persons else households
        hit = _condition(check.expression, context, notes, f"logic:{check.id}", f"'{check.expression}'")
        if hit is None or not hit.any():
            continue
        question = check.question or (min(refs) if refs else None)
        old = text(table.loc[hit, question]) if question in table else ""
        person = table.loc[hit, "person_id"] if on_persons else None
        out.append(
            log_rows(
                table.loc[hit, "uuid"],
                person,
                question if check.action != "remove_survey" else None,
                old,
                None,
                check.description or f"logic check: {check.expression}",
                f"logic:{check.id}",
                check.action,
                table.index[hit],
            )
        )
    return _concat(out)


# ----- what ingest noted ------------------------------------------------------------------------------


def check_redactions(raw: RawExport) -> pd.DataFrame:
    """Free-text answers from which ingest removed personal data (the removed text is not kept)."""
    r = raw.redactions
    return log_rows(
        r["uuid"],
        r["person_id"],
        r["question"],
        "[personal data not kept]",
        None,
        r["issue"],
        "pii_in_text",
        "no_action",
        r.index,
    )


def check_conversions(raw: RawExport) -> pd.DataFrame:
    """Numeric answers ingest read from something other than a plain number (full-width digits, an Excel
    date, text that was blanked), so each is in the log with what was read."""
    c = raw.conversions
    return log_rows(
        c["uuid"],
        c["person_id"],
        c["question"],
        c["old_value"],
        c["new_value"],
        c["issue"],
        "number_format",
        "no_action",
        c.index,
    )
