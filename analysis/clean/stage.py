"""The cleaning stage: every check with its default decision, a person's decisions merged in, the log
applied, the result reviewed and checked against the contract, and the files written.

Every raw submission ends in the clean table or the deletion log (asserted); what a check could not do
is in the check summary; questions of the form absent from the export are listed in the data dictionary
and the run summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from analysis.clean import answers, checks
from analysis.clean.log import (
    LOG_COLUMNS,
    apply_decisions,
    apply_log,
    empty_log,
    isin,
    read_decisions,
    review_cleaning,
)
from analysis.clean.output import validate_clean, write_outputs
from analysis.clean.settings import DEFAULT_SETTINGS, Settings, load_settings
from analysis.errors import AnalysisError, ConfigError
from analysis.form_logic import references
from analysis.ingest import RawExport, read_export
from analysis.instrument import Form, load_form

REMOVAL_CHECKS = ("duplicate_uuid", "test_submission", "no_consent", "duration", "soft_duplicate")
VALUE_CHECKS = (
    "choice_variant",
    "invalid_choice",
    "sentinel",
    "constraint",
    "skip_logic",
    "required",
    "other_recode",
    "roster_size",
    "roster_heads",
    "roster_child_head",
    "roster_generation",
    "outlier",
    "pii_in_text",
    "number_format",
)
SUMMARY_COLUMNS = ["check_id", "status", "rows", "detail"]


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
    check_summary: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUMMARY_COLUMNS))
    other_texts: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __str__(self) -> str:
        c = self.counts
        where = f" -> {self.out_dir}" if self.out_dir else ""
        lines = [
            (
                f"cleaned {c.get('raw_households')} submissions: {c.get('clean_households')} kept, "
                f"{c.get('deleted_households')} deleted; {c.get('clean_persons')} persons; "
                f"{len(self.cleaning_log)} cleaning-log rows{where}"
            )
        ]
        missing = self.raw.missing_columns
        if missing:
            shown = ", ".join(missing[:8]) + (", …" if len(missing) > 8 else "")
            lines.append(
                f"{len(missing)} of the form's questions are not in the export (data_dictionary.csv, "
                f"in_export = no): {shown}"
            )
        not_run = self.check_summary[self.check_summary["status"] != "ran"]
        for row in not_run.itertuples(index=False):
            lines.append(f"check {row.check_id} {row.status}: {row.detail}")
        if len(self.other_texts):
            lines.append(
                f"{len(self.other_texts)} 'other, specify' answers listed for review (other_texts.csv)"
            )
        return "\n".join(lines)


def settings_file(settings: Settings | str | Path | None) -> Path | None:
    """The settings file used, for provenance (None for settings given as an object)."""
    if isinstance(settings, (str, Path)):
        return Path(settings)
    return DEFAULT_SETTINGS if settings is None and DEFAULT_SETTINGS.exists() else None


def as_settings(settings: Settings | str | Path | None) -> Settings:
    """A Settings object from itself, a YAML path, or None (``survey/cleaning.yaml``)."""
    return settings if isinstance(settings, Settings) else load_settings(settings)


def _removal_checks(form: Form, settings: Settings, notes: list) -> list:
    """(check id, check on households and persons) for the checks that remove whole interviews, in order;
    ``p`` gives the persons of the households ``h`` when called (only some checks read them)."""
    s = settings
    return [
        ("duplicate_uuid", lambda h, p: checks.check_duplicate_uuid(h)),
        ("test_submission", lambda h, p: checks.check_test_submissions(form, h, s.test_pattern)),
        ("no_consent", lambda h, p: checks.check_no_consent(h, s.consent.field, s.consent.accept, notes)),
        (
            "duration",
            lambda h, p: checks.check_duration(h, s.duration.min_minutes, s.duration.max_minutes, notes),
        ),
        ("logic", lambda h, p: answers.check_logic(h, p(), s, ("remove_survey",), notes)),
        (
            "soft_duplicate",
            lambda h, p: checks.check_soft_duplicates(
                form,
                h,
                p(),
                s.soft_duplicates.match,
                s.soft_duplicates.block,
                max_differing=s.soft_duplicates.max_differing,
                notes=notes,
            ),
        ),
    ]


def _value_checks(form: Form, raw: RawExport, settings: Settings, notes: list, keep_uuid: pd.Series) -> list:
    """(check id, check on the kept households and persons) for the checks of single answers, in order."""
    s = settings
    return [
        ("choices", lambda h, p: answers.check_choices(form, h, p, s.choices, notes)),
        ("sentinel", lambda h, p: answers.check_sentinels(form, h, p, s.sentinels, notes)),
        ("constraint", lambda h, p: answers.check_constraints(form, h, p, notes)),
        ("skip_logic", lambda h, p: answers.check_skip_logic(form, h, p, notes)),
        ("required", lambda h, p: answers.check_required(form, h, p, notes) if s.required_answers else None),
        ("other_recode", lambda h, p: answers.check_other_text(form, h, p, s.choices)),
        ("roster", lambda h, p: answers.check_roster(h, p, s.roster, s.design.household_size, notes)),
        ("outlier", lambda h, p: answers.check_outliers(form, h, p, s.outliers, notes)),
        ("logic", lambda h, p: answers.check_logic(h, p, s, ("no_action", "blank_response"), notes)),
        ("pii_in_text", lambda h, p: answers.check_redactions(raw)[lambda d: isin(d["uuid"], keep_uuid)]),
        ("number_format", lambda h, p: answers.check_conversions(raw)[lambda d: isin(d["uuid"], keep_uuid)]),
    ]


def _switched_off(check_id: str, settings: Settings, notes: list) -> bool:
    """True (and noted) when the settings' ``skip_checks`` turn this check off."""
    if check_id in settings.skip_checks:
        checks.skip(notes, check_id, "turned off in the cleaning settings (skip_checks)")
        return True
    return False


def run_checks(
    form: Form,
    raw: RawExport,
    settings: Settings | None = None,
    kept: pd.Series | None = None,
    notes: list | None = None,
) -> pd.DataFrame:
    """All checks with their default decisions, as one cleaning log (removals first).

    Removal checks run in order, each on the submissions the earlier ones keep (an empty no-consent
    record is not also "too short", and such records would all "match" each other as soft duplicates).
    Value-level checks run on the submissions in ``kept`` (uuids not removed), so a removed interview
    does not fill the log with answer-by-answer rows. Checks named in the settings' ``skip_checks`` do
    not run; the check summary says so.
    """
    s = settings or Settings()
    notes = [] if notes is None else notes
    hh, ps = raw.households, raw.persons
    for warning in getattr(form, "warnings", ()):
        checks.skip(notes, "form", warning, status="partial")
    for role in ("stratum", "psu"):
        name = getattr(s.design, role)
        if name and name not in hh:
            checks.skip(
                notes, "design", f"{role} field '{name}' is not in the export (the weights stage needs it)"
            )
    found = []
    left = pd.Series(True, index=hh.index)
    households = hh  # the submissions the earlier checks keep, selected again only after a removal
    for check_id, check in _removal_checks(form, s, notes):
        if _switched_off(check_id, s, notes):
            continue
        rows = check(households, lambda h=households: ps[isin(ps["uuid"], h["uuid"])])
        found.append(rows)
        removed = isin(hh["uuid"], rows.loc[rows["change_type"] == "remove_survey", "uuid"])
        if (removed & left).any():
            left &= ~removed
            households = hh[left]
    removals = pd.concat(found, ignore_index=True) if found else empty_log()
    if kept is None:
        kept = ~isin(hh["uuid"], removals.loc[removals["change_type"] == "remove_survey", "uuid"])
    keep_uuid = hh.loc[kept, "uuid"]
    hh_k, ps_k = hh[kept], ps[isin(ps["uuid"], keep_uuid)]
    values = [
        check(hh_k, ps_k)
        for check_id, check in _value_checks(form, raw, s, notes, keep_uuid)
        if not _switched_off(check_id, s, notes)
    ]
    values = pd.concat([v for v in values if v is not None] or [empty_log()], ignore_index=True)
    values = _without_consequences(form, values)
    # one decision per answer cell: the first check in the order above wins (a sentinel 999 is not also
    # blanked as a constraint violation); later rows for the same cell stay as review notes
    cell = ["uuid", "person_id", "question"]
    keyed = values.assign(person_id=values["person_id"].fillna(""))
    later = keyed.duplicated(cell, keep="first") & (keyed["change_type"] != "no_action")
    values.loc[later, "change_type"] = "no_action"
    values.loc[later, "new_value"] = None
    values.loc[later, "issue"] = values.loc[later, "issue"] + " (already handled by an earlier check)"
    return pd.concat([removals, values], ignore_index=True)[LOG_COLUMNS]


def _without_consequences(form: Form, values: pd.DataFrame) -> pd.DataFrame:
    """Drop 'required' flags whose relevance rests on an answer another check already flagged in the same
    interview (age 999 makes the 60+ questions look shown): they follow from that answer, not from a
    question skipped."""
    required = values["check_id"] == "required"
    if not required.any():
        return values
    relevance = form.survey.set_index("name")["relevant_all"].fillna("")
    flagged = set(zip(values.loc[~required, "uuid"], values.loc[~required, "question"].fillna("")))
    consequence = [
        any((u, ref) in flagged for ref in references(relevance.get(q, "") or "true()"))
        for u, q in zip(values.loc[required, "uuid"], values.loc[required, "question"])
    ]
    return values.drop(index=values.index[required][consequence])


def check_summary(log: pd.DataFrame, notes: list, settings: Settings) -> pd.DataFrame:
    """One row per check: ran / partial / skipped, the log rows it wrote, and why it did not fully run
    (the questions a reason applies to are counted and the first few named)."""
    ids = list(REMOVAL_CHECKS) + list(VALUE_CHECKS) + [f"logic:{c.id}" for c in settings.logic_checks]
    if not settings.required_answers:
        ids.remove("required")
    noted = pd.DataFrame(notes, columns=["check_id", "status", "detail", "question"])
    counts = log["check_id"].value_counts()
    rows = []
    for check_id in ids + [i for i in noted["check_id"].unique() if i not in ids]:
        mine = noted[noted["check_id"] == check_id]
        status = "skipped" if (mine["status"] == "skipped").any() else "partial" if len(mine) else "ran"
        details = []
        for detail, group in mine.groupby("detail", sort=False):
            questions = list(dict.fromkeys(q for q in group["question"] if q))
            shown = ", ".join(questions[:5]) + (", …" if len(questions) > 5 else "")
            details.append(f"{len(questions)} question(s) ({shown}): {detail}" if questions else detail)
        rows.append(
            {
                "check_id": check_id,
                "status": status,
                "rows": int(counts.get(check_id, 0)),
                "detail": "; ".join(details),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _removed(log: pd.DataFrame) -> set:
    return set(log.loc[log["change_type"] == "remove_survey", "uuid"])


def _account(raw: RawExport, households: pd.DataFrame, persons: pd.DataFrame, deletion: pd.DataFrame) -> dict:
    """Row accounting: every raw submission (and person) is clean or deleted; asserted."""
    n_raw, n_clean, n_deleted = len(raw.households), len(households), len(deletion)
    if n_raw != n_clean + n_deleted:
        raise AssertionError(f"row accounting broken: {n_raw} raw != {n_clean} clean + {n_deleted} deleted")
    if deletion["issue"].fillna("").eq("").any():
        raise AssertionError("a deleted submission has no reason")
    deleted_persons = int(isin(raw.persons["uuid"], deletion["uuid"]).sum())
    if len(raw.persons) != len(persons) + deleted_persons:
        raise AssertionError("person accounting broken")
    return {
        "raw_households": n_raw,
        "clean_households": n_clean,
        "deleted_households": n_deleted,
        "raw_persons": len(raw.persons),
        "clean_persons": len(persons),
        "deleted_persons": deleted_persons,
    }


def clean_raw(
    form: Form,
    raw: RawExport,
    decisions: pd.DataFrame | None = None,
    settings: Settings | str | Path | None = None,
) -> CleanResult:
    """Checks, decisions, clean tables and review for an already-read export (no files written)."""
    s = as_settings(settings)
    raw = replace(raw, households=checks.with_duration(raw.households, s.duration.start, s.duration.end))
    notes: list = []
    try:
        defaults = run_checks(form, raw, s, notes=notes)
        log = apply_decisions(defaults, decisions)
        if decisions is not None and _removed(log) != _removed(defaults):
            # a person kept or removed interviews: their answers need checking too
            notes = []
            kept = ~isin(raw.households["uuid"], _removed(log))
            log = apply_decisions(run_checks(form, raw, s, kept=kept, notes=notes), decisions)
    except AnalysisError as error:
        if error.file is None and raw.files:
            error.file = str(raw.files[0])
        raise
    households, persons, deletion = apply_log(form, raw, log)
    review = review_cleaning(form, raw, households, persons, log, deletion)
    counts = _account(raw, households, persons, deletion)
    summary = check_summary(log, notes, s)
    return CleanResult(
        households,
        persons,
        log.drop(columns="decision_row").reset_index(drop=True),
        deletion,
        review,
        raw,
        None,
        counts,
        summary,
        answers.other_texts(form, households, persons),
    )


def _decision_error(review: pd.DataFrame, decisions_path: Path) -> None:
    """A decision that names a question or uuid not in the data: refused, naming the decisions file row."""
    wrong = review[review["finding"].isin(["question_does_not_exist", "uuid_does_not_exist"])]
    if len(wrong):
        first = wrong.iloc[0]
        row = first["decision_row"]
        raise ConfigError(
            f"{first['finding'].replace('_', ' ')}: uuid {first['uuid']}, question {first['question']}",
            file=decisions_path,
            row=None if pd.isna(row) else int(row),
            column="question" if first["finding"].startswith("question") else "uuid",
            hint="correct or delete that row of the decisions file",
        )


def clean_survey(
    form_path: str | Path,
    data_path: str | Path,
    out_dir: str | Path,
    decisions: str | Path | None = None,
    settings: Settings | str | Path | None = None,
    apply_log: str | Path | None = None,
) -> CleanResult:
    """Read ``data_path`` with the form at ``form_path``, clean it, and write ``<out_dir>/clean/``.

    ``decisions``: an edited cleaning log whose decisions win over the defaults. ``settings``: a
    cleaning-settings YAML path (default ``survey/cleaning.yaml``) or a Settings object. ``apply_log``:
    a reviewed cleaning log applied alone, with none of the checks (as cleaningtools'
    ``create_clean_data``; see :mod:`analysis.clean.reviewed`).

    Raises AnalysisError for unusable input (nothing is written then), and when a decision cannot be
    applied (a question or uuid that does not exist, a value outside the form's choices).
    """
    if apply_log is not None:
        if decisions is not None:
            raise ConfigError(
                "--decisions and --apply-log exclude each other",
                file=apply_log,
                hint="--apply-log applies a finished log alone; --decisions adjusts the checks' log",
            )
        from analysis.clean.reviewed import apply_reviewed_log

        return apply_reviewed_log(form_path, data_path, apply_log, out_dir, settings)
    form_path, data_path, out_dir = Path(form_path), Path(data_path), Path(out_dir)
    s = as_settings(settings)
    form = load_form(form_path)
    raw = read_export(data_path, form, absent_repeats=s.absent_repeats)
    decided = read_decisions(decisions) if decisions else None
    result = clean_raw(form, raw, decided, s)
    if decisions:
        _decision_error(result.review, Path(decisions))
    if len(result.review):
        first = result.review.iloc[0]
        raise AssertionError(
            f"review_cleaning found {len(result.review)} problem(s), first: {first.to_dict()}"
        )
    keep = {c for c, rule in s.choices.columns.items() if rule.action == "keep"}
    validate_clean(
        form, result.households, result.persons, raw, decided, Path(decisions) if decisions else None, keep
    )
    result.out_dir = out_dir / "clean"
    write_outputs(
        out_dir, result, form, form_path, Path(decisions) if decisions else None, settings_file(settings)
    )
    return result
