"""The project's configuration files, read and checked in one place.

Owns: reading YAML (:func:`read_yaml`), validating it against a typed model with errors that name the
file, the dotted key and its line (:func:`load_model`, usable for any settings file: the cleaning
settings and the simulation parameters use it too), and the models of the three files the analysis
reads:

- ``analysis/needs.yaml`` (:class:`Needs`): the teams — their order, labels, colours, target groups,
  indicators and service lines. This is the only place the list of teams comes from.
- ``analysis/assumptions.yaml`` (:class:`Assumptions`): every planning number with its range and
  source; its ``teams`` must be the teams of ``needs.yaml`` (:func:`load_assumptions`). The disclosure
  thresholds are part of it (read by :func:`analysis.disclosure.thresholds`, the one reader).
- ``analysis/labels.yaml`` (:class:`LabelTexts`): what figures and the brief say, in zh and en.

Loaders return the validated content as plain mappings (``model_dump``), the shape the rest of the
package reads; the models are the contract.
"""

from __future__ import annotations

import math
import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from analysis.errors import ConfigError

HERE = Path(__file__).resolve().parent
NEEDS_PATH = HERE / "needs.yaml"
ASSUMPTIONS_PATH = HERE / "assumptions.yaml"
LABELS_PATH = HERE / "labels.yaml"


# ----- reading YAML with errors that point at the line ------------------------------------------------------

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: same values, ~10x faster


def read_yaml(path: str | Path, what: str):
    """Parse a YAML file, raising :class:`ConfigError` naming the file (and line) when it cannot be read.

    ``what`` says what the file holds, e.g. "need definitions", for the message.
    """
    path = Path(path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found", file=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read {what}: {error.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file is not UTF-8 text", file=str(path)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise ConfigError(
            f"{what} file is not valid YAML ({getattr(error, 'problem', None) or 'syntax error'})",
            file=str(path),
            row=None if mark is None else mark.line + 1,
            hint="check indentation and quoting on that line",
        ) from None


def yaml_line(text: str, loc: tuple) -> int | None:
    """1-based line of the key at ``loc`` (mapping keys and list positions) in the YAML ``text``.

    The document is composed into nodes, which keep their start marks; when ``loc`` goes deeper than the
    file (a missing key), the line of the deepest key that exists is returned.
    """
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _problem(error: dict) -> str:
    """A validation error in words: "is missing", "is not a known key", or the validator's message."""
    if error["type"] == "missing":
        return "is missing"
    if error["type"] == "extra_forbidden":
        return "is an unknown key (a typo?)"
    message = error["msg"].removeprefix("Value error, ")
    return message if error["type"] == "value_error" else f"is invalid: {message}"


def load_model(
    path: str | Path, model: type[BaseModel], what: str, item: str = "key", hint: str | None = None
) -> BaseModel:
    """Read the YAML file ``path`` and validate it as ``model`` (a pydantic model).

    On a bad value raises :class:`ConfigError` with the file, the line and the dotted key, e.g.
    ``file analysis/assumptions.yaml, row 17, column 'working_time.sick_leave': assumption
    'working_time.sick_leave' has value 'five', which is not a number``. ``what`` names the file's content
    ("cleaning settings"), ``item`` a single entry ("assumption"). Validators of the model raise
    ``ValueError`` with a message that reads after the key ("needs range: [low, high] ...").
    """
    path = Path(path)
    content = read_yaml(path, what)
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ConfigError(f"{what} must be a mapping of keys to values", file=str(path), row=1)
    try:
        return model.model_validate(content)
    except ValidationError as errors:
        found = errors.errors()
        first = next(
            (e for e in found if e["type"] == "extra_forbidden"), found[0]
        )  # a typo explains a "missing"
        loc = tuple(p for p in first["loc"] if p != "__root__")
        key = ".".join(str(p) for p in loc) or "(top level)"
        raise ConfigError(
            f"{item} '{key}' {_problem(first)}",
            file=str(path),
            row=yaml_line(path.read_text(encoding="utf-8"), loc),
            column=key,
            hint=hint,
        ) from None


class Section(BaseModel):
    """A block of a configuration file: unknown keys are refused (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ----- shared pieces ----------------------------------------------------------------------------------------


def placeholders(text: str) -> set[str]:
    """Names of the ``{placeholders}`` in a label text."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class Text(Section):
    """A label in Simplified Chinese and English, with the same {placeholders} in both."""

    zh: str
    en: str

    @model_validator(mode="after")
    def _same_placeholders(self):
        if placeholders(self.zh) != placeholders(self.en):
            raise ValueError(
                f"has placeholders {sorted(placeholders(self.zh))} in zh but "
                f"{sorted(placeholders(self.en))} in en; keep the same in both"
            )
        return self


# ----- needs.yaml -------------------------------------------------------------------------------------------

TEAM_NAME = re.compile(r"^[a-z][a-z0-9]*$")
BREAKDOWNS = Literal["cunju", "registration", "sex", "age_band"]


class Universe(Section):
    """A team's target group by age in years, both ends inclusive; empty = everyone (or every household)."""

    age_min: int | None = Field(None, ge=0)
    age_max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"has age_min {self.age_min} above age_max {self.age_max}")
        return self


class Team(Section):
    """One team of the centre: who it serves, when a resident is in need, its service lines, how it is
    shown."""

    unit: Literal["persons", "households"]
    universe: Universe
    indicators: list[str] = Field(min_length=1)
    in_need_if_any: list[str] = Field(min_length=1)
    services: list[str]
    label: Text
    colour: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$")

    @model_validator(mode="after")
    def _need_flags_are_indicators(self):
        unknown = sorted(set(self.in_need_if_any) - set(self.indicators))
        if unknown:
            raise ValueError(f"in_need_if_any names {unknown}, which are not among its indicators")
        return self


class NeedParameters(Section):
    """Cut-offs of the need indicators (their sources are given beside them in needs.yaml)."""

    elderly_min_age: int = 60
    adl_dependent_max_score: int = 5
    iadl_dependent_max_score: int = 5
    k6_cutoff: int = 13
    heavy_care_hours: float = 20


class Breakdowns(Section):
    """The groups every indicator and every service line is also estimated for."""

    indicators: list[BREAKDOWNS] = ["cunju", "registration", "sex", "age_band"]
    services: list[BREAKDOWNS] = ["registration"]


class Needs(Section):
    """``analysis/needs.yaml``: the teams in display order and the parameters of their indicators."""

    parameters: NeedParameters = NeedParameters()
    breakdowns: Breakdowns = Breakdowns()
    teams: dict[str, Team] = Field(min_length=1)

    @field_validator("teams")
    @classmethod
    def _plain_names(cls, teams: dict) -> dict:
        for name in teams:
            if not TEAM_NAME.match(name):
                raise ValueError(
                    f"has a team named {name!r}; use lower-case letters and digits (it becomes part "
                    "of column names such as in_need_<team>)"
                )
        colours = [team.colour.lower() for team in teams.values()]
        if len(set(colours)) < len(colours):
            raise ValueError("gives two teams the same colour")
        return teams


def load_needs(path: str | Path = NEEDS_PATH) -> dict:
    """The need definitions as a mapping (``teams`` in file order: the order of every table and figure)."""
    return load_model(path, Needs, "need definitions", hint="see analysis/needs.yaml").model_dump(
        exclude_none=True
    )


# ----- assumptions.yaml -------------------------------------------------------------------------------------


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class Leaf(Section):
    """One planning number: ``value``, the ``range`` [low, high] the sensitivity analysis tries, and a
    ``source`` (a section of docs/sources.md and what it says) or ``assumption: true``."""

    value: int | float
    range: tuple[int | float, int | float]
    source: str | None = None
    assumption: bool = False

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, leaf: Any):
        if not isinstance(leaf, dict):
            raise ValueError(f"must be {{value: ..., range: [low, high], source: ...}}, not {leaf!r}")  # noqa: TRY004 (pydantic reports ValueError only)
        value, rng = leaf.get("value"), leaf.get("range")
        if not _is_number(value):
            raise ValueError(f"has value {value!r}, which is not a number")
        if not (
            isinstance(rng, list | tuple)
            and len(rng) == 2
            and all(_is_number(x) for x in rng)
            and rng[0] <= value <= rng[1]
        ):
            raise ValueError(f"needs range: [low, high] around its value {value}")
        if not (isinstance(leaf.get("source"), str) or leaf.get("assumption") is True):
            raise ValueError("has neither a source nor 'assumption: true'")
        return leaf


class CategoryLeaf(Leaf):
    """A category allowance: hours ``per`` day, week or year that every social worker spends on it."""

    per: Literal["day", "week", "year"]


class WorkingTime(Section):
    weeks_per_year: Leaf
    days_per_week: Leaf
    public_holidays: Leaf
    annual_leave: Leaf
    sick_leave: Leaf
    training_days: Leaf
    hours_per_day: Leaf


class Casework(Section):
    coverage: Leaf
    contacts_per_case: Leaf
    unit_time_hours: Leaf


class HomeVisits(Section):
    coverage: Leaf
    visits_per_case: Leaf
    unit_time_hours: Leaf


class GroupSessions(Section):
    coverage: Leaf
    group_size: Leaf
    sessions_per_group: Leaf
    unit_time_hours: Leaf


class CommunityEvents(Section):
    coverage: Leaf
    attendance_per_event: Leaf
    unit_time_hours: Leaf


class TeamAssumptions(Section):
    """The four activities of a team, its caseload norm (a cross-check) and its other staff per social
    worker."""

    casework: Casework
    home_visits: HomeVisits
    group_sessions: GroupSessions
    community_events: CommunityEvents
    caseload_norm: Leaf
    other_staff_per_social_worker: Leaf


class Plan(Section):
    social_workers: Leaf
    other_staff: Leaf
    minimum_social_workers: Leaf
    minimum_other_staff: Leaf
    method: Literal["hamilton", "webster", "huntington_hill", "jefferson"]


class Disclosure(Section):
    """Small-cell rules (docs/sources.md §6): respondents below which a cell is not published."""

    leadership_threshold: Leaf
    internal_threshold: Leaf
    k_anonymity: Leaf


class Assumptions(Section):
    """``analysis/assumptions.yaml``: working time, allowances, per-team activities, the plan, disclosure."""

    working_time: WorkingTime
    category_allowances: dict[str, CategoryLeaf]
    individual_allowances: dict[str, Leaf]
    teams: dict[str, TeamAssumptions] = Field(min_length=1)
    plan: Plan
    disclosure: Disclosure


def load_assumptions(path: str | Path = ASSUMPTIONS_PATH, needs: dict | None = None) -> dict:
    """The planning assumptions as a mapping, in the file's order, validated.

    With ``needs`` (the need definitions) the ``teams`` must be exactly the teams of needs.yaml, and are
    returned in needs.yaml's order: the team list has one source.
    """
    path = Path(path)
    raw = load_model(
        path,
        Assumptions,
        "assumptions",
        item="assumption",
        hint="every number needs value, range and source (or assumption: true)",
    )
    content = raw.model_dump(exclude_defaults=True)  # no 'source: None' or 'assumption: False' added
    if needs is not None:
        content["teams"] = teams_in_needs_order(content["teams"], needs, path)
    return content


def teams_in_needs_order(teams: dict, needs: dict, path: str | Path = ASSUMPTIONS_PATH) -> dict:
    """``teams`` (a per-team section of a configuration file) reordered as needs.yaml lists the teams;
    ConfigError naming the first team that is in one file and not in the other."""
    wanted = list(needs["teams"])
    missing = [t for t in wanted if t not in teams]
    if missing:
        raise ConfigError(
            f"team '{missing[0]}' of needs.yaml has no planning assumptions",
            file=str(path),
            column=f"teams.{missing[0]}",
            hint="copy another team's block under teams: and adapt it",
        )
    extra = [t for t in teams if t not in wanted]
    if extra:
        raise ConfigError(
            f"team '{extra[0]}' is not a team of needs.yaml",
            file=str(path),
            column=f"teams.{extra[0]}",
            hint="teams are listed in analysis/needs.yaml; remove or rename it",
        )
    return {t: teams[t] for t in wanted}


# ----- labels.yaml ------------------------------------------------------------------------------------------


class LabelTexts(Section):
    """``analysis/labels.yaml``: every text of the figures and the brief that the instrument and needs.yaml
    do not hold (team names are in needs.yaml; question and choice labels in the instrument)."""

    staff_category: dict[str, Text]
    assumption_parts: dict[str, Text]
    units: dict[str, Text]
    suppressed: Text
    suppressed_cell: Text
    mark: dict[str, Text]
    footnote: dict[str, Text]
    figures: dict[str, dict[str, Text]]
    deletion_reason: dict[str, Text]
    brief: dict[str, Text]
    evaluation: dict[str, Text]


def load_label_texts(path: str | Path = LABELS_PATH) -> dict:
    """The label texts as a mapping of sections to ``{zh, en}`` leaves."""
    return load_model(
        path, LabelTexts, "labels", item="label", hint="every label needs zh and en"
    ).model_dump()
