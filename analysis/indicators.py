"""Need indicators: Washington Group, Katz ADL, Lawton IADL, K6, youth, family and living arrangements.

Owns: the scoring of each instrument and the need flags named in needs.yaml (``in_need_<team>``,
``unmet_<team>``); the definitions themselves are read and validated by :mod:`analysis.config`.

Every function takes a clean table (``persons`` or ``households``, field names as in docs/contracts.md)
and returns a new Series or DataFrame aligned to its index; nothing is written into the argument.

Flags are float Series: 1.0 = has the need, 0.0 = does not, NaN = outside the question's universe
(e.g. ADL for a person under 60) or not answered. Design-based estimators then treat NaN rows as
out of domain, so a prevalence is always "among the people the question applies to".

Sources are cited by section of ``docs/sources.md``.
``add_need_flags`` adds every flag named in the need definitions (``analysis/needs.yaml``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.distinct import each_distinct
from analysis.errors import ConfigError

NEEDS_FILE = config.NEEDS_PATH

WG_DOMAINS = ["wg_seeing", "wg_hearing", "wg_walking", "wg_cognition", "wg_selfcare", "wg_communication"]
ADL_ITEMS = [
    "adl_bathing",
    "adl_dressing",
    "adl_toileting",
    "adl_transferring",
    "adl_continence",
    "adl_feeding",
]
K6_ITEMS = ["k6_nervous", "k6_hopeless", "k6_restless", "k6_depressed", "k6_effort", "k6_worthless"]

# Lawton–Brody IADL: for each domain, the answer codes (1 = most independent) that score 1.
# docs/sources.md §4.3 (Lawton & Brody, Gerontologist 1969; scoring tables in BJA 2015 / Mt Sinai J Med 2012).
IADL_INDEPENDENT_CODES = {
    "iadl_telephone": (1, 2, 3),  # 4 levels: uses phone on own initiative .. does not use at all
    "iadl_shopping": (1,),  # 4 levels: only "takes care of all shopping independently" scores 1
    "iadl_food": (1,),  # 4 levels: only "plans, prepares and serves adequate meals" scores 1
    "iadl_housekeeping": (1, 2, 3, 4),  # 5 levels: all but "does not participate" score 1
    "iadl_laundry": (1, 2),  # 3 levels: all laundry done by others scores 0
    "iadl_transport": (1, 2, 3),  # 5 levels: travel limited to taxi/car with help, or none, score 0
    "iadl_medication": (1,),  # 3 levels: only "fully responsible" scores 1
    "iadl_finances": (1, 2),  # 3 levels: "incapable of handling money" scores 0
}
IADL_ITEMS = list(IADL_INDEPENDENT_CODES)
IADL_LEVELS = {  # answer codes 1..n of each domain's question
    "iadl_telephone": 4,
    "iadl_shopping": 4,
    "iadl_food": 4,
    "iadl_housekeeping": 5,
    "iadl_laundry": 3,
    "iadl_transport": 5,
    "iadl_medication": 3,
    "iadl_finances": 3,
}

YES_NO = {"yes": 1.0, "no": 0.0}
FREQUENCY_OFTEN = {"often": 1.0, "sometimes": 0.0, "never": 0.0}


def _codes(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numeric answer codes of ``columns`` (choice names such as "1".."4"); anything else -> NaN."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"columns {missing} are missing from the table",
            column=missing[0],
            hint="indicators need the clean tables with bare field names (docs/contracts.md)",
        )
    return pd.DataFrame({c: _numeric(frame[c]) for c in columns}, index=frame.index)


def _numeric(values: pd.Series) -> pd.Series:
    """``pd.to_numeric(values, errors="coerce")``, each distinct answer converted once (a choice column
    holds a handful: 88 columns of 385,000 answers 4.8 → 0.5 s)."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_numeric(values, errors="coerce")
    converted = each_distinct(
        values, lambda distinct: pd.to_numeric(pd.Series(distinct), errors="coerce").to_numpy(), np.nan
    )
    return pd.Series(converted, index=values.index, name=values.name)


def _recode(series: pd.Series, mapping: dict[str, float]) -> pd.Series:
    """Map choice names to 0/1 flags (stripped, lower-cased); unknown or missing answers become NaN. Each
    distinct answer is recoded once (five youth items of 400,000 persons: 1.3 → 0.1 s)."""

    def recoded(distinct) -> np.ndarray:
        text = pd.Series(distinct).astype("string").str.strip().str.lower()
        return text.map(mapping).astype("float64").to_numpy()

    return pd.Series(each_distinct(series, recoded, np.nan), index=series.index, name=series.name)


def _flag(condition: pd.Series, known: pd.Series) -> pd.Series:
    """1.0/0.0 where ``known`` holds, NaN elsewhere."""
    return condition.astype("float64").where(known)


def wg_disability(persons: pd.DataFrame, cutoff: str = "disability3") -> pd.Series:
    """Washington Group Short Set disability identifier (docs/sources.md §4.1;
    washingtongroup-disability.com).

    Six domains coded 1 no difficulty, 2 some, 3 a lot, 4 cannot do at all; asked of members aged 5+.
    ``cutoff``:
      - "disability3" (WG's recommended identifier): at least one domain coded 3 or 4;
      - "some2": at least two domains coded 2 or worse, or one domain 3 or worse (WG "disability 2");
      - "cannot": at least one domain coded 4 (WG "disability 4").
    A person with no domain meeting the cut-off but some domains unanswered is NaN (status unknown),
    as in WG's analytic guidance; so is anyone with no answers (e.g. children under 5).
    """
    codes = _codes(persons, WG_DOMAINS)
    complete = codes.notna().all(axis=1)
    if cutoff == "disability3":
        hit = (codes >= 3).any(axis=1)
    elif cutoff == "some2":
        hit = ((codes >= 2).sum(axis=1) >= 2) | (codes >= 3).any(axis=1)
    elif cutoff == "cannot":
        hit = (codes == 4).any(axis=1)
    else:
        raise ConfigError(
            f"unknown Washington Group cut-off {cutoff!r}",
            hint="use 'disability3', 'some2' or 'cannot'",
        )
    return _flag(hit, hit | complete).rename(f"wg_{cutoff}")


def wg_domain_difficulty(persons: pd.DataFrame) -> pd.DataFrame:
    """Per-domain flags "a lot of difficulty or cannot do" (code >= 3), for the type mix (docs/sources.md
    §4.1).

    Columns are named ``<domain>_alot`` (e.g. ``wg_walking_alot``); unanswered -> NaN.
    """
    codes = _codes(persons, WG_DOMAINS)
    return pd.DataFrame(
        {f"{c}_alot": _flag(codes[c] >= 3, codes[c].notna()) for c in WG_DOMAINS}, index=persons.index
    )


def katz_adl(persons: pd.DataFrame) -> pd.DataFrame:
    """Katz Index of Independence in ADL (Katz et al. JAMA 1963; docs/sources.md §4.2).

    Six items scored 1 independent / 0 dependent; ``adl_score`` is their sum, 0–6, 6 = fully
    independent; NaN unless all six are answered (asked of members aged 60+). ``adl_level``:
    "independent" (6), "moderate" (4–5), "severe" (0–3), the common bands in docs/sources.md §4.2.
    """
    codes = _codes(persons, ADL_ITEMS)
    valid = codes.isin([0, 1])
    score = codes.where(valid).sum(axis=1, min_count=len(ADL_ITEMS)).where(valid.all(axis=1))
    level = pd.Series(
        pd.cut(score, bins=[-0.5, 3.5, 5.5, 6.5], labels=["severe", "moderate", "independent"]),
        index=persons.index,
    ).astype("string")
    return pd.DataFrame({"adl_score": score, "adl_level": level}, index=persons.index)


def lawton_iadl(persons: pd.DataFrame) -> pd.DataFrame:
    """Lawton–Brody IADL score (Lawton & Brody, Gerontologist 1969; docs/sources.md §4.3).

    Each of eight domains is collapsed to 1/0 by ``IADL_INDEPENDENT_CODES``; ``iadl_score`` is the sum,
    0–8, 8 = independent. All eight domains are scored for men and women alike (modern practice; the
    historical male version used five). NaN unless every domain has a valid code (asked of 60+).
    """
    codes = _codes(persons, IADL_ITEMS)
    valid = pd.DataFrame({c: codes[c].isin(range(1, IADL_LEVELS[c] + 1)) for c in IADL_ITEMS})
    scored = pd.DataFrame({c: codes[c].isin(IADL_INDEPENDENT_CODES[c]).astype("float64") for c in IADL_ITEMS})
    score = scored.sum(axis=1).where(valid.all(axis=1))
    return pd.DataFrame({"iadl_score": score}, index=persons.index)


def k6(households: pd.DataFrame, cutoff: int = 13) -> pd.DataFrame:
    """Kessler K6 psychological distress of the adult respondent (Kessler et al. 2002; docs/sources.md §4.4).

    Six items coded 0 (none of the time) .. 4 (all of the time); ``k6_score`` 0–24, NaN unless all six
    are answered; ``k6_distress`` = score >= ``cutoff`` (13, serious psychological distress).
    """
    codes = _codes(households, K6_ITEMS)
    valid = codes.isin(range(5))
    score = codes.where(valid).sum(axis=1).where(valid.all(axis=1))
    return pd.DataFrame(
        {"k6_score": score, "k6_distress": _flag(score >= cutoff, score.notna())}, index=households.index
    )


def youth_flags(persons: pd.DataFrame) -> pd.DataFrame:
    """Youth need flags from the youth module (instrument, docs/contracts.md).

    These are the project's own short items, not a validated scale (docs/sources.md §4.5 lists SDQ/CES-D,
    which are longer or licensed); counting "often" (not "sometimes") as a need is an assumption.
    The migrant work/integration item follows docs/sources.md §1.5 (Leliu's youth are largely migrants).

    - ``youth_afterschool``: needs after-school care (asked at 6–14);
    - ``youth_study_pressure``, ``youth_conflict``: "often" (vs sometimes/never) (asked at 10–24);
    - ``youth_internet``: internet overuse reported (10–24);
    - ``youth_work_integration``: needs work/integration support (non-local 16–24).
    Each is NaN outside the question's universe, as the form's skip logic leaves it blank.
    """
    return pd.DataFrame(
        {
            "youth_afterschool": _recode(persons["youth_afterschool"], YES_NO),
            "youth_study_pressure": _recode(persons["youth_study_pressure"], FREQUENCY_OFTEN),
            "youth_conflict": _recode(persons["youth_conflict"], FREQUENCY_OFTEN),
            "youth_internet": _recode(persons["youth_internet"], YES_NO),
            "youth_work_integration": _recode(persons["youth_work_integration"], YES_NO),
        },
        index=persons.index,
    )


def family_flags(households: pd.DataFrame, heavy_care_hours: float = 20) -> pd.DataFrame:
    """Household family and caregiving need flags from the family module (instrument, docs/contracts.md).

    The project's own items, not a validated scale; the thresholds below are assumptions (needs.yaml).

    - ``care_dependent``: a member depends on others' care (yes/no);
    - ``caregiver_strain``: caregiver reports strain, or cares ``heavy_care_hours``+ hours a week
      (20 h/week is a common "intensive caregiving" threshold — an assumption, set in needs.yaml);
      0 for households without a care-dependent member;
    - ``family_conflict``: family conflict "often";
    - ``parenting_stress``: yes (NaN when "na", i.e. no children);
    - ``hardship``: economic hardship reported.
    """
    dependent = _recode(households["care_dependent"], YES_NO)
    strain = _recode(households["caregiver_strain"], YES_NO)
    hours = pd.to_numeric(households["caregiver_hours"], errors="coerce")
    heavy = (strain == 1) | (hours >= heavy_care_hours)
    known = (dependent == 0) | strain.notna() | hours.notna()
    caregiver = _flag(heavy & (dependent == 1), known & dependent.notna())
    return pd.DataFrame(
        {
            "care_dependent": dependent,
            "caregiver_strain": caregiver,
            "family_conflict": _recode(households["family_conflict"], FREQUENCY_OFTEN),
            "parenting_stress": _recode(households["parenting_stress"], YES_NO),
            "hardship": _recode(households["hardship"], YES_NO),
        },
        index=households.index,
    )


def living_arrangement(persons: pd.DataFrame, min_age: int = 60) -> pd.DataFrame:
    """Older people living alone or in an "empty nest" (空巢), from the household roster (docs/sources.md
    §1.4).

    - ``living_alone``: aged ``min_age``+ and the only member on the roster;
    - ``empty_nest``: aged ``min_age``+ and every roster member is the head or the head's spouse
      (living alone or with a spouse only, the usual 空巢 definition).
    NaN under ``min_age`` (60, the age of elderly rights under Chinese law; 65 is also common).
    """
    size = persons.groupby("household_id")["person_id"].transform("size")
    couple = persons["relation"].isin(["head", "spouse"])
    all_couple = couple.groupby(persons["household_id"]).transform("all")
    age = pd.to_numeric(persons["age"], errors="coerce")
    old = age >= min_age
    return pd.DataFrame(
        {
            "living_alone": _flag(size == 1, old),
            "empty_nest": _flag(all_couple & (size <= 2), old),
        },
        index=persons.index,
    )


def any_flag(flags: pd.DataFrame) -> pd.Series:
    """1 if any flag is 1; 0 if all answered flags are 0; NaN if no flag is known."""
    return _flag((flags == 1).any(axis=1), flags.notna().any(axis=1))


def load_needs(path: str | Path = NEEDS_FILE) -> dict:
    """Read and check the need definitions (``analysis/needs.yaml`` by default;
    :class:`analysis.config.Needs`)."""
    return config.load_needs(path)


def in_universe(table: pd.DataFrame, universe: dict) -> pd.Series:
    """Rows inside a team's target population: ``age_min``/``age_max`` (inclusive) on ``age``."""
    inside = pd.Series(True, index=table.index)
    if "age_min" in universe or "age_max" in universe:
        age = pd.to_numeric(table["age"], errors="coerce")
        inside &= age >= universe.get("age_min", -np.inf)
        inside &= age <= universe.get("age_max", np.inf)
    return inside


def add_need_flags(
    households: pd.DataFrame, persons: pd.DataFrame, definitions: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add every indicator and each team's ``in_need_<team>`` and ``unmet_<team>`` flag.

    Person indicators go on ``persons``, household ones (K6, family) on ``households``; a team may only
    name flags of its own unit. ``in_need_<team>`` = any of the team's ``in_need_if_any`` flags, NaN
    outside the team's universe (e.g. under 60 for the elderly team). ``unmet_<team>`` = in need and the
    household reports receiving none of the team's services (``receiving_<team>`` empty).
    Parameters (cut-offs, ages) come from the definitions' ``parameters``. Returns new tables.
    """
    definitions = load_needs() if definitions is None else definitions
    p = definitions.get("parameters", {})
    person_flags = pd.concat(
        [
            wg_disability(persons, "disability3").rename("wg_disability"),
            wg_disability(persons, "some2").rename("wg_some2"),
            wg_disability(persons, "cannot").rename("wg_cannot"),
            wg_domain_difficulty(persons),
            katz_adl(persons),
            lawton_iadl(persons),
            youth_flags(persons),
            living_arrangement(persons, min_age=p.get("elderly_min_age", 60)),
        ],
        axis=1,
    )
    person_flags["adl_dependent"] = _flag(
        person_flags["adl_score"] <= p.get("adl_dependent_max_score", 5), person_flags["adl_score"].notna()
    )
    person_flags["adl_severe"] = _flag(
        person_flags["adl_level"] == "severe", person_flags["adl_score"].notna()
    )
    person_flags["iadl_dependent"] = _flag(
        person_flags["iadl_score"] <= p.get("iadl_dependent_max_score", 5), person_flags["iadl_score"].notna()
    )
    household_flags = pd.concat(
        [
            k6(households, cutoff=p.get("k6_cutoff", 13)),
            family_flags(households, p.get("heavy_care_hours", 20)),
        ],
        axis=1,
    )
    persons = persons.drop(columns=person_flags.columns, errors="ignore").join(person_flags)
    households = households.drop(columns=household_flags.columns, errors="ignore").join(household_flags)

    # each person's household row, found once for every team (-1: none)
    household_row = pd.Index(households["household_id"]).get_indexer(persons["household_id"])
    for team, spec in definitions["teams"].items():
        table = persons if spec["unit"] == "persons" else households
        unknown = [f for f in spec["indicators"] if f not in table.columns]
        if unknown:
            raise ConfigError(
                f"team {team!r} names indicators {unknown} that are not {spec['unit']}-level flags",
                file="needs.yaml",
                column="indicators",
                hint="see analysis/indicators.py for the flags each unit has",
            )
        inside = in_universe(table, spec["universe"] or {})
        flags = table[spec["in_need_if_any"]].where(inside)
        in_need = any_flag(flags).rename(f"in_need_{team}")
        services = [f"receiving_{team}.{s}" for s in spec["services"]]
        present = [c for c in services if c in households.columns]
        receiving = _codes(households, present).fillna(0).gt(0).any(axis=1)
        if spec["unit"] == "persons":
            got = pd.Series(
                np.where(household_row >= 0, receiving.to_numpy(dtype=bool)[household_row], False),
                index=persons.index,
            )
            persons = persons.assign(
                **{
                    in_need.name: in_need,
                    f"unmet_{team}": _flag(got.eq(False) & in_need.eq(1), in_need.notna()),
                }
            )
        else:
            households = households.assign(
                **{
                    in_need.name: in_need,
                    f"unmet_{team}": _flag(receiving.eq(False) & in_need.eq(1), in_need.notna()),
                }
            )
    return households, persons
