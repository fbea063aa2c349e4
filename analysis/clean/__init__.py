"""Checks, cleaning and deletion logs, decisions and clean tables, following IMPACT's ``cleaningtools``.

Every check returns cleaning-log rows ``uuid, person_id, question, old_value, new_value, issue, check_id,
change_type`` (docs/sources.md §5.1; ``person_id`` is added for repeat-group rows, as cleaningtools adds
``cols_to_add_cleaning_log``). The default decision of each check is a rule in this package; a person
edits the log (CSV or XLSX), passes it back as ``decisions`` and their change_type/new_value win
(:func:`apply_decisions`). The clean data are made by applying the log (:func:`apply_log`), then audited
as ``review_cleaning`` does (:func:`review_cleaning`). Every raw submission ends in the clean table or the
deletion log. A reviewed log can also be applied alone (``--apply-log``, :mod:`analysis.clean.reviewed`).

Checks are driven by the XLSForm (constraints, relevance, choices, types) and by the cleaning settings
(:mod:`analysis.clean.settings`, ``survey/cleaning.yaml``), so they work for any Kobo/ODK survey:

- :mod:`~analysis.clean.checks` — whole interviews (duplicates, consent, duration, test submissions);
- :mod:`~analysis.clean.answers` — single answers (choices, sentinels, constraints, skip logic, required,
  outliers, roster, "other" texts, the settings' logic checks);
- :mod:`~analysis.clean.log` — the log, decisions, applying and reviewing it;
- :mod:`~analysis.clean.output` — the contract of the clean tables and the files written;
- :mod:`~analysis.clean.stage` — :func:`clean_survey`, the stage as one function.
"""

from analysis.clean.answers import (
    check_choices,
    check_constraints,
    check_other_text,
    check_outliers,
    check_required,
    check_roster,
    check_sentinels,
    check_skip_logic,
    other_texts,
)
from analysis.clean.checks import (
    check_duplicate_uuid,
    check_duration,
    check_no_consent,
    check_soft_duplicates,
    check_test_submissions,
    with_duration,
)
from analysis.clean.log import (
    CHANGE_TYPES,
    DELETION_COLUMNS,
    LOG_COLUMNS,
    apply_decisions,
    apply_log,
    read_decisions,
    review_cleaning,
)
from analysis.clean.output import contract_schemas, data_dictionary, validate_clean
from analysis.clean.settings import Settings, load_settings
from analysis.clean.stage import CleanResult, clean_raw, clean_survey, run_checks

__all__ = [
    "CHANGE_TYPES",
    "DELETION_COLUMNS",
    "LOG_COLUMNS",
    "CleanResult",
    "Settings",
    "apply_decisions",
    "apply_log",
    "check_choices",
    "check_constraints",
    "check_duplicate_uuid",
    "check_duration",
    "check_no_consent",
    "check_other_text",
    "check_outliers",
    "check_required",
    "check_roster",
    "check_sentinels",
    "check_skip_logic",
    "check_soft_duplicates",
    "check_test_submissions",
    "clean_raw",
    "clean_survey",
    "contract_schemas",
    "data_dictionary",
    "load_settings",
    "other_texts",
    "read_decisions",
    "review_cleaning",
    "run_checks",
    "validate_clean",
    "with_duration",
]
