"""The cleaning settings: which fields the checks use and their thresholds, read from a YAML file.

``survey/cleaning.yaml`` holds this project's settings; ``--settings FILE`` names another. Every key is
optional: a missing key takes the default below (cleaningtools' defaults where it has one). A field
name set here but absent from the export is reported in the check summary (``check_summary.csv``),
never silently ignored. Errors name the file, the key and its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analysis.config import load_model
from analysis.form_logic import ExpressionError, parse

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_SETTINGS = ROOT / "survey" / "cleaning.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Consent(_Section):
    """Interviews whose consent field is not one of ``accept`` are removed. YAML reads an unquoted
    ``yes``/``no`` as true/false; here they are taken back as the text ``yes``/``no``."""

    field: str | None = None
    accept: list[str] = ["yes"]

    @field_validator("accept", mode="before")
    @classmethod
    def _yes_no(cls, values):
        values = values if isinstance(values, list) else [values]
        return [("yes" if v else "no") if isinstance(v, bool) else v for v in values]


class Design(_Section):
    """Sample design fields: stratum, primary sampling unit, household size (used by the checks and named
    in the summary when absent)."""

    stratum: str | None = None
    psu: str | None = None
    household_size: str | None = None


class Duration(_Section):
    """Interview length end − start in minutes; shorter than ``min_minutes`` removed, longer flagged.
    25 and 90 minutes are cleaningtools' ``check_duration`` defaults."""

    start: str = "start"
    end: str = "end"
    min_minutes: float = Field(25.0, ge=0)
    max_minutes: float = Field(90.0, gt=0)


class Outliers(_Section):
    """Soft ranges: ``sd`` flags values beyond ``sd`` standard deviations on the raw and log(x+1) scales
    (cleaningtools ``check_outliers``), ``iqr`` beyond ``iqr_k`` interquartile ranges outside the
    quartiles. ``fields`` None means every integer/decimal question; a form constraint is a hard range
    and does not exempt a field unless ``include_constrained`` is false."""

    method: Literal["sd", "iqr"] = "sd"
    sd: float = Field(3.0, gt=0)
    iqr_k: float = Field(1.5, gt=0)
    min_unique: int = Field(10, ge=2)
    fields: list[str] | None = None
    exclude: list[str] = []
    include_constrained: bool = True


class SoftDuplicates(_Section):
    """Two interviews agreeing on more than ``match`` of their answered questions (Kuriakose & Robbins
    2016), or, when ``max_differing`` is set, differing in at most that many answers (cleaningtools'
    rule), compared within ``block`` (a field such as the PSU; None compares the whole survey)."""

    match: float = Field(0.85, gt=0, le=1)
    max_differing: int | None = Field(None, ge=0)
    block: str | None = None


class ColumnRule(_Section):
    """What to do with a select_one column whose answers often fall outside its choice list."""

    action: Literal["keep", "blank", "map"]
    recode: dict[str, str] = {}

    @model_validator(mode="after")
    def _map_needs_recode(self):
        if self.action == "map" and not self.recode:
            raise ValueError("action 'map' needs a recode table (old value: choice name)")
        return self


class Choices(_Section):
    """select_one answers outside the choice list: recoded to a choice when they are a variant of its
    name or label (exact after normalising, contained in it, or at least ``similarity`` alike, never on
    fewer than ``min_length`` characters), else blanked. When more than ``max_invalid_share`` of a
    column's answers fail (and at least ``min_invalid_count`` of them: a share of a handful of answers says
    little), cleaning stops unless ``columns`` says keep, blank or map."""

    min_length: int = Field(3, ge=1)
    similarity: float = Field(0.85, gt=0, le=1)
    max_invalid_share: float = Field(0.05, ge=0, le=1)
    min_invalid_count: int = Field(5, ge=1)
    columns: dict[str, ColumnRule] = {}


class Roster(_Section):
    """Household roster fields and plausibility rules (``min_head_age`` 15 is an assumption)."""

    relation: str | None = None
    head: str = "head"
    age: str | None = None
    min_head_age: float = 15.0
    younger_than_head: list[str] = []
    older_than_head: list[str] = []


class LogicCheck(_Section):
    """A rule written as an XLSForm expression that is true for a suspect answer (as cleaningtools'
    ``check_logical``): e.g. ``${age_hoh} < 18 and ${hhh_r} = 'yes'``."""

    id: str
    expression: str
    description: str = ""
    question: str | None = None
    action: Literal["no_action", "blank_response", "remove_survey"] = "no_action"

    @field_validator("expression")
    @classmethod
    def _parses(cls, text: str) -> str:
        try:
            parse(text)
        except ExpressionError as error:
            raise ValueError(error.problem) from None
        return text


class Settings(_Section):
    """All cleaning settings (see the module docstring)."""

    consent: Consent = Consent()
    design: Design = Design()
    duration: Duration = Duration()
    sentinels: list[float] = [99, 999, 88, 888]
    outliers: Outliers = Outliers()
    soft_duplicates: SoftDuplicates = SoftDuplicates()
    choices: Choices = Choices()
    roster: Roster = Roster()
    test_pattern: str = r"(?i)\btest\b|测试|測試|试填|試填|\bdemo\b"
    logic_checks: list[LogicCheck] = []
    required_answers: bool = True
    absent_repeats: list[str] = []
    skip_checks: list[
        Literal[
            "duplicate_uuid",
            "test_submission",
            "no_consent",
            "duration",
            "logic",
            "soft_duplicate",
            "choices",
            "sentinel",
            "constraint",
            "skip_logic",
            "required",
            "other_recode",
            "roster",
            "outlier",
            "pii_in_text",
            "number_format",
        ]
    ] = []

    @model_validator(mode="after")
    def _unique_logic_ids(self):
        ids = [c.id for c in self.logic_checks]
        repeated = {i for i in ids if ids.count(i) > 1}
        if repeated:
            raise ValueError(f"logic check id {min(repeated)!r} is used twice")
        return self


def load_settings(path: str | Path | None = None) -> Settings:
    """Settings from ``path`` (default ``survey/cleaning.yaml``; built-in defaults when that file is absent).

    Raises ConfigError naming the file, the key (dotted, e.g. ``outliers.sd``) and its line.
    """
    if path is None:
        if not DEFAULT_SETTINGS.exists():
            return Settings()
        path = DEFAULT_SETTINGS
    return load_model(
        Path(path),
        Settings,
        "cleaning settings",
        item="setting",
        hint="see survey/cleaning.yaml for every key and its meaning",
    )
