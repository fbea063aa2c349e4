"""A synthetic Leliu: population, sample, raw exports with injected faults, and the planted truth.

No real Leliu microdata is public, so every downstream stage is tested against this generator. Every
parameter lives in ``analysis/simulation.yaml`` with its source (docs/sources.md) or marked as an assumption.

- :func:`build_population` — residents in households in residential groups (PSUs) in 村居, with
  correlated needs (disability rising with age in the 2006 national type mix, ADL/IADL dependency among
  the old, elderly living alone, migrant youth needier, caregiving where a dependent lives, K6, family
  needs, service needs). Vectorised numpy: a million persons build in well under a minute.
- :func:`draw_sample` — stratified (村居) two-stage sample (PPS systematic groups, SRS households),
  nonresponse depending on registration and age; returns fault-free clean tables and the design.
- :func:`truth` — finite-population values of every need indicator, computed with
  :mod:`analysis.indicators` on the population itself, overall and by 村居.
- :func:`write_survey` — the Kobo-style and 问卷星-style exports with injected faults, the frame
  files, the truth, the fault manifest and PROVENANCE.json; same seed, same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import read_yaml
from analysis.errors import ConfigError

PARAMS_FILE = Path(__file__).with_name("simulation.yaml")
TEAMS = ("elderly", "disability", "youth", "family")
SERVICES = {  # service lines per team (docs/contracts.md), "other" last
    "elderly": ["home_visit", "meal", "day_care", "health", "activity"],
    "disability": ["rehab", "assistive", "respite", "employment", "inclusion"],
    "youth": ["afterschool", "tutoring", "counselling", "skills", "leisure"],
    "family": ["counselling", "parenting", "mediation", "assistance", "newcomer"],
}
SERVICE_QUESTIONS = ("need", "receiving", "would_use")
WG = ["wg_seeing", "wg_hearing", "wg_walking", "wg_cognition", "wg_selfcare", "wg_communication"]
ADL = ["adl_bathing", "adl_dressing", "adl_toileting", "adl_transferring", "adl_continence", "adl_feeding"]
IADL_LEVELS = {"iadl_telephone": 4, "iadl_shopping": 4, "iadl_food": 4, "iadl_housekeeping": 5,
               "iadl_laundry": 3, "iadl_transport": 5, "iadl_medication": 3, "iadl_finances": 3}
K6 = ["k6_nervous", "k6_hopeless", "k6_restless", "k6_depressed", "k6_effort", "k6_worthless"]
YOUTH = ["youth_afterschool", "youth_study_pressure", "youth_conflict", "youth_internet", "youth_work_integration"]
AGE_BANDS = [(0, 14), (15, 24), (25, 44), (45, 59), (60, 69), (70, 79), (80, 200)]
AGE_BAND_LABELS = ["0-14", "15-24", "25-44", "45-59", "60-69", "70-79", "80+"]
RELATION_ORDER = ["head", "spouse", "child", "child_in_law", "grandchild", "parent", "sibling", "other"]


def load_params(path: str | Path = PARAMS_FILE) -> dict:
    """Read the simulation parameters (``analysis/simulation.yaml`` by default)."""
    path = Path(path)
    params = read_yaml(path, "simulation parameters")
    for key in ("population", "households", "disability", "elderly", "youth", "family", "services", "sample",
                "interview", "faults", "service_drivers"):
        if key not in (params or {}):
            raise ConfigError(f"missing section '{key}'", file=str(path), hint="see analysis/simulation.yaml")
    return params


def age_band(age: pd.Series | np.ndarray) -> pd.Categorical:
    """Age bands of the population frame: 0-14, 15-24, 25-44, 45-59, 60-69, 70-79, 80+ (completed years)."""
    edges = [b[0] for b in AGE_BANDS] + [1000]
    return pd.Categorical.from_codes(np.searchsorted(edges, np.asarray(age), side="right") - 1,
                                     categories=AGE_BAND_LABELS, ordered=True)


@dataclass
class Population:
    """A synthetic Leliu. ``households`` and ``persons`` use the instrument's bare field names and codes
    (select_multiple as ``<name>.<option>`` 0/1 columns only) plus ``household_id``, ``person_id``,
    ``cunju``, ``psu`` and generator columns (``origin``, ``hh_type``, ``disabled``, ...).
    ``cunju`` is the 村居 table of the frame; ``groups`` one row per residential group (PSU)."""

    households: pd.DataFrame
    persons: pd.DataFrame
    cunju: pd.DataFrame
    groups: pd.DataFrame
    params: dict
    seed: int


@dataclass
class Sample:
    """A drawn sample: fault-free clean tables of the responding households and their members, the
    sample design (one row per sampled PSU, docs/contracts.md) and every issued household with its
    response outcome (``issued``: household_id, psu, responded)."""

    households: pd.DataFrame
    persons: pd.DataFrame
    design: pd.DataFrame
    issued: pd.DataFrame = field(repr=False)


# ----------------------------------------------------------------------------------------------------------
# Population
# ----------------------------------------------------------------------------------------------------------

def _elderly_ages(rng, n, scale):
    """Ages 60+ as 60 + exponential(scale), capped at 100 (ASSUMPTION, simulation.yaml households)."""
    return np.minimum(60 + rng.exponential(scale, n), 100).astype(np.int16)


def _members(rng, n_households, kind, p):
    """Members of ``n_households`` households of one composition ``kind``.

    Returns a dict of equal-length arrays: hh (0..n-1 within the kind), relation, age, sex (0 male,
    1 female), local (registration). Ages and roles follow the household-type descriptions in
    simulation.yaml (all ASSUMPTION).
    """
    h = p["households"]
    scale = h["elderly_age_scale"]
    idx = np.arange(n_households)
    parts = []

    def add(hh, relation, age, sex, local):
        parts.append({"hh": hh, "relation": np.full(len(hh), relation), "age": np.asarray(age, dtype=np.int16),
                      "sex": np.asarray(sex, dtype=np.int8), "local": np.asarray(local, dtype=bool)})

    def couple(head_age, local_head, spouse_local):
        head_sex = (rng.random(n_households) < h["female_head_share_couples"]).astype(np.int8)
        add(idx, "head", head_age, head_sex, local_head)
        low, high = h["spouse_age_offset"]
        spouse_age = np.clip(head_age + rng.integers(low, high + 1, n_households), 18, 100)
        add(idx, "spouse", spouse_age, 1 - head_sex, spouse_local)

    def children(head_age, weights, max_age, local):
        # a child is born when the head is aged parent_age_at_birth; not-yet-born children are dropped
        k = rng.choice(len(weights), n_households, p=np.asarray(weights) / np.sum(weights))
        hh = np.repeat(idx, k)
        low, high = h["parent_age_at_birth"]
        age = head_age[hh] - rng.integers(low, high + 1, len(hh))
        born = (age >= 0) & (age <= max_age)
        hh, age = hh[born], age[born]
        add(hh, "child", age, (rng.random(len(hh)) < h["female_share"]["children"]).astype(int), local[hh])

    ones, zeros = np.ones(n_households, bool), np.zeros(n_households, bool)
    if kind == "elderly_alone":
        add(idx, "head", _elderly_ages(rng, n_households, scale),
            rng.random(n_households) < h["female_share"]["elderly_alone"], ones)
    elif kind == "elderly_couple":
        couple(_elderly_ages(rng, n_households, scale), ones, ones)
    elif kind in ("nuclear", "three_generation"):
        low = 25 if kind == "nuclear" else 30
        head_age = rng.integers(low, 60, n_households)
        mixed = rng.random(n_households) < h["mixed_spouse_share"]
        couple(head_age, ones, ~mixed)
        children(head_age, h["children_weights"], 35, ones)
        if kind == "three_generation":
            n_parents = 1 + (rng.random(n_households) < h["two_parents_share"])
            hh = np.repeat(idx, n_parents)
            age = np.maximum(head_age[hh] + rng.integers(22, 35, len(hh)), _elderly_ages(rng, len(hh), scale))
            add(hh, "parent", np.minimum(age, 100), rng.random(len(hh)) < h["female_share"]["parents"],
                np.ones(len(hh), bool))
    elif kind == "single_adult":
        add(idx, "head", rng.integers(20, 60, n_households), rng.random(n_households) < h["female_share"]["single"],
            ones)
    elif kind == "young_couple":
        couple(rng.integers(20, 41, n_households), ones, rng.random(n_households) > h["mixed_spouse_share"])
    elif kind == "single_worker":
        add(idx, "head", 18 + np.floor(rng.beta(*h["worker_age_beta"], n_households) * 27),
            rng.random(n_households) < h["female_share"]["single"], zeros)
    elif kind == "couple":
        couple(20 + np.floor(rng.beta(1.8, 3.0, n_households) * 30).astype(int), zeros, zeros)
    elif kind in ("family", "with_parent"):
        head_age = 24 + np.floor(rng.beta(2.0, 2.5, n_households) * 22).astype(int)
        couple(head_age, zeros, zeros)
        children(head_age, h["migrant_children_weights"], 17, zeros)
        if kind == "with_parent":
            add(idx, "parent", rng.integers(50, 76, n_households), rng.random(n_households) < h["female_share"]["parents"],
                zeros)
    elif kind == "shared":
        k = rng.integers(2, 5, n_households)
        hh = np.repeat(idx, k)
        first = np.r_[True, hh[1:] != hh[:-1]]
        relation = np.where(first, "head", np.where(rng.random(len(hh)) < 0.5, "sibling", "other"))
        part = {"hh": hh, "relation": relation, "age": (18 + np.floor(rng.beta(1.5, 3.0, len(hh)) * 18)).astype(
            np.int16), "sex": (rng.random(len(hh)) < h["female_share"]["shared"]).astype(np.int8),
                "local": np.zeros(len(hh), bool)}
        parts.append(part)
    else:
        raise ConfigError(f"unknown household type '{kind}'", file=str(PARAMS_FILE), column=kind)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _compose(rng, n_households, shares, p):
    """Households of one origin with members; returns (households, persons) DataFrames in random order."""
    kinds = list(shares)
    counts = rng.multinomial(n_households, np.asarray([shares[k] for k in kinds]) / sum(shares.values()))
    hh_frames, person_frames, offset = [], [], 0
    for kind, count in zip(kinds, counts):
        members = _members(rng, int(count), kind, p)
        person_frames.append(pd.DataFrame(members).assign(hh=members["hh"] + offset))
        hh_frames.append(pd.DataFrame({"hh": np.arange(offset, offset + count), "hh_type": kind}))
        offset += int(count)
    households = pd.concat(hh_frames, ignore_index=True)
    persons = pd.concat(person_frames, ignore_index=True)
    order = rng.permutation(len(households))  # random household order, so trimming to totals is unbiased
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    households = households.assign(hh=rank[households["hh"]]).sort_values("hh", kind="stable")
    role = pd.Categorical(persons["relation"], categories=RELATION_ORDER, ordered=True).codes
    persons = persons.assign(hh=rank[persons["hh"]], _role=role)
    persons = persons.sort_values(["hh", "_role", "age"], ascending=[True, True, False], kind="stable")
    return households.reset_index(drop=True), persons.drop(columns="_role").reset_index(drop=True)


def _trim(households, persons, count_mask, target):
    """Keep households in order until ``target`` persons selected by ``count_mask`` are reached exactly;
    in the household where the target is crossed, counted members beyond it are dropped."""
    cum = np.cumsum(count_mask)
    if cum[-1] < target:
        raise ConfigError(f"generated {cum[-1]} persons, fewer than the target {target}",
                          file=str(PARAMS_FILE), hint="raise the household over-generation factor")
    last_hh = persons["hh"].to_numpy()[np.searchsorted(cum, target)]
    keep = (persons["hh"].to_numpy() < last_hh) | ((persons["hh"].to_numpy() == last_hh) & ~(count_mask & (cum > target)))
    return households[households["hh"] <= last_hh], persons[keep]


def _assign_places(rng, households, p, n_cunju):
    """Give each household a 村居 and a residential group (PSU); migrants cluster (ASSUMPTION)."""
    pp = p["population"]
    size = rng.lognormal(0.0, pp["cunju_size_sigma"], n_cunju)
    size /= size.sum()
    mean_share = 1 - pp["registered"] / pp["residents"]  # about half are non-registered (docs/sources.md §1.1)
    migrant_share = np.clip(mean_share + rng.normal(0, pp["cunju_migrant_share_sd"], n_cunju), 0.15, 0.85)
    migrant = (households["origin"] == "migrant").to_numpy()
    w_local, w_migrant = size * (1 - migrant_share), size * migrant_share
    cunju = np.where(migrant, _draw_index(rng, w_migrant / w_migrant.sum(), len(households)),
                     _draw_index(rng, w_local / w_local.sum(), len(households)))
    hh_per_cunju = np.bincount(cunju, minlength=n_cunju)
    n_groups = np.maximum(2, np.round(hh_per_cunju / pp["households_per_group"]).astype(int))
    group = np.zeros(len(households), dtype=np.int16)
    for c in range(n_cunju):  # loop over 村居 (about 22), vectorised within
        in_c = cunju == c
        g_size = rng.lognormal(0, pp["group_size_sigma"], n_groups[c])
        g_mig = 1 / (1 + np.exp(-(np.log(migrant_share[c] / (1 - migrant_share[c]))
                                  + rng.normal(0, pp["group_migrant_sd"], n_groups[c]))))
        for is_migrant, weight in ((True, g_size * g_mig), (False, g_size * (1 - g_mig))):
            sel = in_c & (migrant == is_migrant)
            group[sel] = _draw_index(rng, weight / weight.sum(), int(sel.sum()))
    return cunju, group, n_groups


def _draw_index(rng, prob, n):
    """n independent draws of an index with probabilities ``prob`` (inverse-CDF, vectorised)."""
    return np.minimum(np.searchsorted(np.cumsum(prob), rng.random(n), side="right"), len(prob) - 1)


def _by_household(values, hh, n, how="any"):
    """Aggregate a person-level array to households (hh = 0..n-1): any / sum / max."""
    if how == "any":
        return np.bincount(hh, weights=np.asarray(values, dtype=float), minlength=n) > 0
    if how == "sum":
        return np.bincount(hh, weights=np.asarray(values, dtype=float), minlength=n)
    out = np.full(n, -np.inf)
    np.maximum.at(out, hh, np.asarray(values, dtype=float))
    return out


def _choice(rng, probs_by_row, labels):
    """One categorical draw per row from row-specific probabilities (n, k) -> labels."""
    u = rng.random(len(probs_by_row))[:, None]
    return np.asarray(labels)[(u > np.cumsum(probs_by_row, axis=1)).sum(axis=1).clip(0, len(labels) - 1)]


def _persons_needs(rng, persons, p):
    """WG-SS, Katz ADL, Lawton IADL and youth answers for every person (codes as in the instrument)."""
    age = persons["age"].to_numpy()
    local = persons["local"].to_numpy()
    n = len(age)
    d = p["disability"]
    band = np.searchsorted(d["age_breaks"], age, side="right") - 1
    disabled = rng.random(n) < np.asarray(d["prevalence"])[band]
    types = list(d["type_mix"])
    kind = np.full(n, "", dtype=object)
    kind[disabled] = np.asarray(types)[_draw_index(rng, np.asarray([d["type_mix"][t] for t in types]) /
                                                   sum(d["type_mix"].values()), int(disabled.sum()))]
    severe = disabled & (rng.random(n) < d["severe_share"])
    wg = np.where(rng.random((n, 6)) < np.asarray(d["some_difficulty_by_age"])[band][:, None], 2, 1)
    alot = np.zeros((n, 6), dtype=bool)
    col = {name: i for i, name in enumerate(["seeing", "hearing", "walking", "cognition", "selfcare",
                                             "communication"])}
    alot[kind == "visual", col["seeing"]] = True
    alot[kind == "hearing", col["hearing"]] = True
    alot[kind == "speech", col["communication"]] = True
    physical = kind == "physical"
    alot[physical, col["walking"]] = True
    alot[physical, col["selfcare"]] = rng.random(int(physical.sum())) < d["physical_selfcare"]
    intellectual = kind == "intellectual"
    alot[intellectual, col["cognition"]] = True
    alot[intellectual, col["communication"]] = rng.random(int(intellectual.sum())) < d["intellectual_communication"]
    mental = kind == "mental"
    missed = mental & (rng.random(n) < d["mental_wg_miss"])
    alot[mental & ~missed, col["cognition"]] = True
    wg[missed, col["cognition"]] = 2
    multiple = np.flatnonzero(kind == "multiple")
    pair = np.argsort(rng.random((len(multiple), 5)), axis=1)[:, :2]  # two of the first five domains
    alot[multiple[:, None], pair] = True
    wg = np.where(alot, np.where(severe[:, None], 4, 3), wg).astype(float)
    wg[age < 5] = np.nan

    e = p["elderly"]
    old = age >= 60
    p_adl = np.select([age >= 80, age >= 70, age >= 60], [e["adl_dependent_by_age"][80],
                      e["adl_dependent_by_age"][70], e["adl_dependent_by_age"][60]], 0.0)
    p_adl = np.minimum(np.where(disabled, p_adl * e["adl_disabled_factor"], p_adl), 0.9)
    adl_dep = old & (rng.random(n) < p_adl)
    k = 1 + _draw_index(rng, np.asarray(e["adl_items_dependent_weights"]) / sum(e["adl_items_dependent_weights"]), n)
    adl = np.where(np.arange(6)[None, :] < np.where(adl_dep, k, 0)[:, None], 0, 1).astype(float)
    adl[~old] = np.nan
    frailty = (e["iadl_frailty_age_per_decade"] * (age - 60) / 10 + e["iadl_frailty_disabled"] * disabled
               + e["iadl_frailty_adl"] * adl_dep + rng.normal(0, 1, n))
    out = {"disabled_type": kind, "disabled": disabled, "adl_dep": adl_dep}
    for i, name in enumerate(WG):
        out[name] = wg[:, i]
    for i, name in enumerate(ADL):
        out[name] = adl[:, i]
    for name, levels in IADL_LEVELS.items():
        latent = frailty + rng.normal(0, e["iadl_item_noise"], n)
        cuts = e["iadl_threshold"] + e["iadl_step"] * np.arange(levels - 1)
        out[name] = np.where(old, 1 + (latent[:, None] > cuts[None, :]).sum(axis=1), np.nan)

    y = p["youth"]
    reg = np.where(local, "local", "nonlocal")
    def rate(spec):
        return np.where(local, spec["local"], spec["nonlocal"])
    in_6_14 = (age >= 6) & (age <= 14)
    in_10_24 = (age >= 10) & (age <= 24)
    out["youth_afterschool"] = np.where(in_6_14, np.where(rng.random(n) < rate(y["afterschool"]), "yes", "no"), None)
    for name, often_key, sometimes_key in (("youth_study_pressure", "study_pressure_often", "study_pressure_sometimes"),
                                           ("youth_conflict", "conflict_often", "conflict_sometimes")):
        often = rate(y[often_key])
        probs = np.column_stack([often, np.full(n, y[sometimes_key]), 1 - often - y[sometimes_key]])
        out[name] = np.where(in_10_24, _choice(rng, probs, ["often", "sometimes", "never"]), None)
    out["youth_internet"] = np.where(in_10_24, np.where(rng.random(n) < rate(y["internet"]), "yes", "no"), None)
    work = in_10_24 & (age >= 16) & ~local
    out["youth_work_integration"] = np.where(work, np.where(rng.random(n) < y["work_integration"], "yes", "no"), None)
    out["registration"] = reg
    return out


def _household_needs(rng, households, persons, p):
    """Respondent, K6, family module and service answers per household, from its members (vectorised)."""
    n = len(households)
    hh = persons["hh"].to_numpy()
    age = persons["age"].to_numpy()
    f, s = p["family"], p["services"]
    migrant = (households["origin"] == "migrant").to_numpy()
    group_effect = rng.normal(0, f["group_effect_sd"], int(households["group_key"].max()) + 1)[
        households["group_key"].to_numpy()]

    adult = age >= 18
    first_adult = np.full(n, -1)
    idx_adult = np.flatnonzero(adult)
    first_adult[hh[idx_adult[::-1]]] = idx_adult[::-1]  # smallest index per household wins (head first)
    respondent = first_adult
    severe_member = (persons[WG].to_numpy() == 4).any(axis=1)
    dependent_member = persons["adl_dep"].to_numpy() | severe_member
    adl_score = persons[ADL].to_numpy().sum(axis=1)
    care = _by_household(dependent_member, hh, n) | (rng.random(n) < f["care_false_positive"])
    heavy = _by_household(np.nan_to_num(adl_score, nan=6) <= 3, hh, n)
    hours = np.round(f["caregiver_hours_median"] * np.exp(rng.normal(0, f["caregiver_hours_sigma"], n))
                     * np.where(heavy, f["caregiver_hours_heavy_factor"], 1.0)).clip(1, 168)
    strain = care & (rng.random(n) < np.minimum(f["strain_base"] + f["strain_per_hour"] * hours, 0.9))

    def logit_draw(prob):
        return rng.random(n) < 1 / (1 + np.exp(-(np.log(prob / (1 - prob)) + group_effect)))

    hard_p = np.where(migrant, f["hardship"]["nonlocal"], f["hardship"]["local"]) + care * f["hardship"][
        "care_dependent_add"]
    hardship = logit_draw(hard_p)
    often = np.where(migrant, f["conflict_often"]["nonlocal"], f["conflict_often"]["local"])
    conflict = _choice(rng, np.column_stack([often, np.full(n, f["conflict_sometimes"]),
                                             1 - often - f["conflict_sometimes"]]), ["often", "sometimes", "never"])
    has_child = _by_household(age < 18, hh, n)
    stress_p = np.where(migrant, f["parenting_stress"]["nonlocal"], f["parenting_stress"]["local"])
    parenting = np.where(has_child, np.where(rng.random(n) < stress_p, "yes", "no"), "na")
    latent = (f["k6_latent_mean"] + f["k6_hardship"] * hardship + f["k6_strain"] * strain
              + f["k6_migrant"] * migrant + rng.normal(0, 1, n))
    k6 = np.clip(np.floor(latent[:, None] + rng.normal(0, f["k6_item_noise"], (n, 6)) + f["k6_item_offset"]), 0, 4)

    out = {
        "resp_age": age[respondent], "resp_sex": np.where(persons["sex"].to_numpy()[respondent] == 1, "female", "male"),
        "respondent_person": respondent,
        "care_dependent": np.where(care, "yes", "no"),
        "caregiver_hours": np.where(care, hours, np.nan),
        "caregiver_strain": np.where(care, np.where(strain, "yes", "no"), None),
        "family_conflict": conflict, "parenting_stress": parenting,
        "hardship": np.where(hardship, "yes", "no"),
    }
    for i, name in enumerate(K6):
        out[name] = k6[:, i]

    youth = persons[YOUTH]
    disabled = persons["disabled"].to_numpy()
    dtype = persons["disabled_type"].to_numpy()
    iadl_dep = np.zeros(len(persons), bool)
    iadl_dep[age >= 60] = (persons.loc[age >= 60, list(IADL_LEVELS)].to_numpy() > 1).sum(axis=1) >= 3
    elderly_dep = persons["adl_dep"].to_numpy() | iadl_dep
    drivers = {
        "everyone": np.ones(n, bool),
        "has_elderly": _by_household(age >= 60, hh, n),
        "has_elderly_70": _by_household(age >= 70, hh, n),
        "has_elderly_young_old": _by_household((age >= 60) & (age < 80), hh, n),
        "elderly_dependent": _by_household(elderly_dep, hh, n),
        "elderly_alone_or_dependent": _by_household(elderly_dep, hh, n) | (
            _by_household(age >= 60, hh, n) & (households["hh_size"].to_numpy() == 1)),
        "has_disabled": _by_household(disabled & (age >= 5), hh, n),
        "has_disabled_physical": _by_household(np.isin(dtype, ["physical", "multiple"]), hh, n),
        "has_disabled_severe": _by_household(severe_member, hh, n),
        "has_disabled_working_age": _by_household(disabled & (age >= 16) & (age < 60), hh, n),
        "caregiver_strain": strain,
        "has_youth": _by_household((age >= 6) & (age <= 24), hh, n),
        "has_youth_10_24": _by_household((age >= 10) & (age <= 24), hh, n),
        "youth_afterschool": _by_household(youth["youth_afterschool"].to_numpy() == "yes", hh, n),
        "youth_study_pressure": _by_household(youth["youth_study_pressure"].to_numpy() == "often", hh, n),
        "youth_conflict_or_internet": _by_household((youth["youth_conflict"].to_numpy() == "often")
                                                    | (youth["youth_internet"].to_numpy() == "yes"), hh, n),
        "youth_work_integration": _by_household(youth["youth_work_integration"].to_numpy() == "yes", hh, n),
        "k6_distress": k6.sum(axis=1) >= 13,
        "parenting_stress": parenting == "yes",
        "family_conflict": conflict == "often",
        "hardship": hardship,
        "migrant_with_children": migrant & has_child,
    }
    need_count = np.zeros((n, len(TEAMS)))
    for t, team in enumerate(TEAMS):
        spec = p["service_drivers"][team]
        eligible = drivers[spec["eligible"]]
        for service in SERVICES[team]:
            flagged = drivers[spec[service]] & eligible
            prob = np.where(flagged, s["need_flagged"], np.where(eligible, s["need_base"], s["need_base"] / 10))
            need = rng.random(n) < prob
            receiving = need & (rng.random(n) < s["receiving_given_need"])
            would = np.where(need, rng.random(n) < s["would_use_given_need"],
                             eligible & (rng.random(n) < s["would_use_without_need"]))
            out[f"need_{team}.{service}"] = need.astype(np.int8)
            out[f"receiving_{team}.{service}"] = receiving.astype(np.int8)
            out[f"would_use_{team}.{service}"] = would.astype(np.int8)
            need_count[:, t] += need
        for question in SERVICE_QUESTIONS:
            out[f"{question}_{team}.other"] = (eligible & (rng.random(n) < s["other_share"])).astype(np.int8)
    ranked = np.argsort(-(need_count + rng.gumbel(0, s["priorities_noise"], need_count.shape)), axis=1)
    k = 1 + _draw_index(rng, np.asarray(s["priorities_count_weights"]) / sum(s["priorities_count_weights"]), n)
    chosen = np.zeros_like(need_count, dtype=bool)
    np.put_along_axis(chosen, ranked, np.arange(len(TEAMS))[None, :] < k[:, None], axis=1)
    for t, team in enumerate(TEAMS):
        out[f"priorities.{team}"] = chosen[:, t].astype(np.int8)
    out["aware_centre"] = np.where(logit_draw(np.full(n, s["aware_centre"])), "yes", "no")
    return out


def build_population(seed: int, params: dict | None = None, scale: float = 1.0) -> Population:
    """Build a synthetic Leliu of ``scale`` × 220,000 residents (exactly ``scale`` × the public totals).

    Households are generated by composition type for registered (local) and migrant origins, trimmed so
    that residents and registered persons equal the public totals (docs/sources.md §1.1), placed in 村居 and
    residential groups, and given correlated needs. Deterministic in ``seed``.
    """
    p = load_params() if params is None else params
    rng = np.random.default_rng(seed)
    pp = p["population"]
    residents, registered = round(pp["residents"] * scale), round(pp["registered"] * scale)
    if not 0 < registered < residents:
        raise ConfigError("need 0 < registered < residents", file=str(PARAMS_FILE), column="population")
    local_hh, local_p = _compose(rng, int(registered / 2.6 * 1.15) + 50, p["households"]["local_types"], p)
    local_hh, local_p = _trim(local_hh, local_p, local_p["local"].to_numpy(), registered)
    nonlocal_in_local = int((~local_p["local"]).sum())
    mig_hh, mig_p = _compose(rng, int((residents - registered) / 2.0 * 1.15) + 50,
                             p["households"]["migrant_types"], p)
    mig_hh, mig_p = _trim(mig_hh, mig_p, np.ones(len(mig_p), bool), residents - registered - nonlocal_in_local)
    offset = len(local_hh)
    households = pd.concat([local_hh.assign(origin="local"), mig_hh.assign(origin="migrant", hh=mig_hh["hh"] + offset)],
                           ignore_index=True)
    persons = pd.concat([local_p, mig_p.assign(hh=mig_p["hh"] + offset)], ignore_index=True)
    n = len(households)
    hh = persons["hh"].to_numpy()
    households["hh_size"] = np.bincount(hh, minlength=n)
    n_local = np.bincount(hh, weights=persons["local"].to_numpy().astype(float), minlength=n)
    households["hh_registration"] = np.select([n_local == households["hh_size"], n_local == 0],
                                              ["local", "nonlocal"], "mixed")

    cunju, group, _n_groups = _assign_places(rng, households, p, pp["n_cunju"])
    order = np.lexsort((np.arange(n), group, cunju))  # households sorted by 村居, group, then random order
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    households = households.assign(hh=rank[households["hh"].to_numpy()], _c=cunju, _g=group)
    households = households.sort_values("hh").reset_index(drop=True)
    persons = persons.assign(hh=rank[hh]).sort_values("hh", kind="stable").reset_index(drop=True)
    codes = np.array([f"c{i + 1:02d}" for i in range(pp["n_cunju"])])
    households["cunju"] = codes[households["_c"]]
    households["psu"] = np.char.add(np.char.add(households["cunju"].to_numpy().astype(str), "-g"),
                                    np.char.zfill((households["_g"] + 1).astype(str).to_numpy().astype(str), 2))
    households["group_key"] = households.groupby(["_c", "_g"]).ngroup()
    households["household_id"] = np.char.add("h", np.char.zfill(np.arange(1, n + 1).astype(str), 7))

    hp = p["households"]["housing"]
    single_migrant = (households["origin"] == "migrant") & households["hh_type"].isin(["single_worker", "shared"])
    probs = np.where((households["origin"] == "local").to_numpy()[:, None], hp["local"],
                     np.where(single_migrant.to_numpy()[:, None], hp["migrant_single"], hp["migrant_other"]))
    households["housing"] = _choice(rng, probs, ["own", "rent", "dorm", "other"])

    hh = persons["hh"].to_numpy()
    persons["household_id"] = households["household_id"].to_numpy()[hh]
    persons["person_id"] = np.char.add(np.char.add(persons["household_id"].to_numpy().astype(str), "-"),
                                       np.char.zfill((persons.groupby("hh").cumcount() + 1).astype(str)
                                                     .to_numpy().astype(str), 2))
    persons["cunju"] = households["cunju"].to_numpy()[hh]
    persons["sex"] = np.where(persons["sex"] == 1, "female", "male")
    needs = _persons_needs(rng, persons, p)
    persons = persons.assign(**needs)
    persons = persons.drop(columns=["local"])
    first = np.r_[True, hh[1:] != hh[:-1]]
    households["head_age"] = persons["age"].to_numpy()[first]
    households["has_elderly"] = _by_household(persons["age"].to_numpy() >= 60, hh, n)
    hh_needs = _household_needs(rng, households, persons, p)
    households = households.assign(**hh_needs)
    households = households.drop(columns=["hh", "_c", "_g"])
    persons = persons.drop(columns=["hh"])
    cat = ["hh_registration", "housing", "cunju", "psu", "origin", "hh_type", "resp_sex", "care_dependent",
           "caregiver_strain", "family_conflict", "parenting_stress", "hardship", "aware_centre"]
    households = households.astype({c: "category" for c in cat})
    persons = persons.astype({c: "category" for c in ["relation", "sex", "registration", "cunju", "disabled_type",
                                                      *YOUTH]})
    cunju_table = _cunju_table(households, persons, p)
    groups = (households.groupby("psu", observed=True)
              .agg(cunju=("cunju", "first"), households=("household_id", "size"))
              .reset_index()[["cunju", "psu", "households"]])
    groups["cunju"] = groups["cunju"].astype(str)
    return Population(households=households, persons=persons, cunju=cunju_table, groups=groups, params=p, seed=seed)


def _cunju_table(households, persons, p):
    """The 村居 frame table: code, names only where docs/sources.md §1.1 gives evidence, households, residents."""
    pp = p["population"]
    named = pp.get("named_cunju", [])
    codes = [f"c{i + 1:02d}" for i in range(pp["n_cunju"])]
    table = pd.DataFrame({
        "cunju": codes,
        "name_zh": [named[i]["zh"] if i < len(named) else f"村居{i + 1:02d}" for i in range(len(codes))],
        "name_en": [named[i]["en"] if i < len(named) else f"Village/community {i + 1:02d}" for i in range(len(codes))],
        "name_evidence": [named[i]["evidence"] if i < len(named) else "placeholder" for i in range(len(codes))],
    })
    table["households"] = table["cunju"].map(households["cunju"].astype(str).value_counts()).fillna(0).astype(int)
    table["residents"] = table["cunju"].map(persons["cunju"].astype(str).value_counts()).fillna(0).astype(int)
    return table


def population_frame(population: Population) -> pd.DataFrame:
    """Persons by 村居 × sex × age band × registration (``population_frame.csv``), every cell listed."""
    persons = population.persons
    cells = pd.DataFrame({"cunju": persons["cunju"].astype(str), "sex": persons["sex"].astype(str),
                          "age_band": age_band(persons["age"]), "registration": persons["registration"].astype(str)})
    counts = cells.groupby(["cunju", "sex", "age_band", "registration"], observed=False).size()
    frame = counts.rename("population").reset_index()
    frame["age_band"] = frame["age_band"].astype(str)
    return frame.sort_values(["cunju", "sex", "age_band", "registration"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------
# Sample
# ----------------------------------------------------------------------------------------------------------

HOUSING_OTHER = ["借住亲戚家", "工地临时住所", "自建铁皮房", "寺庙宿舍"]
OTHER_TEXT = {
    "elderly": ["陪同看病", "理发上门", "法律咨询"],
    "disability": ["无障碍改造", "特殊教育", "交通接送"],
    "youth": ["暑期托管", "心理测评", "入学咨询"],
    "family": ["婚前辅导", "家政培训", "法律援助"],
}
COMMENTS = ["希望多办长者活动", "希望中心晚上也开放", "服务很好，继续努力", "希望增加暑期托管", "希望有更多亲子活动",
            "不太了解中心", "希望多宣传", "希望简化申请手续"]


def _allocate(groups: pd.DataFrame, n_psus: int) -> pd.Series:
    """PSUs per 村居: proportional to households, at least 2, at most the number of groups."""
    by_stratum = groups.groupby("cunju")["households"].agg(["sum", "size"])
    share = by_stratum["sum"] / by_stratum["sum"].sum()
    return np.minimum(np.maximum(np.round(share * n_psus), 2), by_stratum["size"]).astype(int)


def _select_psus(rng, groups: pd.DataFrame, allocation: pd.Series, method: str) -> pd.DataFrame:
    """First stage, within each 村居: PPS systematic by household count (random order) or SRS.

    Groups whose PPS probability would reach 1 are taken with certainty and the rest re-allocated.
    Returns the sampled groups with stratum_psus, sampled_psus, psu_households and p_psu.
    """
    chosen = []
    for cunju, frame in groups.groupby("cunju", sort=True):  # loop over ~22 strata, vectorised within
        n_h = int(allocation[cunju])
        size = frame["households"].to_numpy(dtype=float)
        if method == "srs":
            pick = rng.permutation(len(frame))[:n_h]
            prob = np.full(len(frame), n_h / len(frame))
        else:
            certain = np.zeros(len(frame), bool)
            prob = np.ones(len(frame))
            while (~certain).any():
                rest = n_h - certain.sum()
                prob = np.where(certain, 1.0, rest * size / size[~certain].sum())
                if not (prob[~certain] >= 1).any():
                    break
                certain |= prob >= 1
            order = rng.permutation(np.flatnonzero(~certain))
            cum = np.cumsum(prob[order])
            points = rng.random() + np.arange(round(cum[-1])) if len(order) else np.array([])
            pick = np.r_[np.flatnonzero(certain), order[np.searchsorted(cum, points, side="right")]].astype(int)
        chosen.append(frame.iloc[np.sort(pick)].assign(stratum_psus=len(frame), sampled_psus=n_h,
                                                        p_psu=prob[np.sort(pick)]))
    out = pd.concat(chosen, ignore_index=True).rename(columns={"households": "psu_households"})
    out["psu"] = out["psu"].astype(str)
    return out


def _codes_as_text(values) -> np.ndarray:
    """Numeric answer codes -> choice-name strings ("1".."4"); missing -> None."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), None, np.nan_to_num(values).astype(int).astype(str))


def _joined(dummies: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Space-separated selected choice names from 0/1 columns (a select_multiple answer)."""
    parts = [np.where(dummies[c].to_numpy() == 1, name + " ", "") for c, name in zip(dummies.columns, names)]
    return np.char.strip(np.sum(np.array(parts, dtype=object), axis=0).astype(str)) if parts else np.array([])


def clean_tables(households: pd.DataFrame, persons: pd.DataFrame, rng,
                 comment_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Population rows -> fault-free clean tables (docs/contracts.md): bare field names, choice names as
    codes, select_multiple as the space-separated column plus ``<name>.<option>`` 0/1 columns, no PII.
    Free-text answers (``housing_other``, ``need_<team>_other``, ``comments``) are drawn with ``rng``."""
    n = len(households)
    h = {"household_id": households["household_id"].to_numpy(), "consent": np.full(n, "yes")}
    for name in ("cunju", "psu", "resp_age", "resp_sex", "hh_registration", "housing"):
        h[name] = households[name].astype(str).to_numpy() if name != "resp_age" else households[name].to_numpy()
    other_housing = h["housing"] == "other"
    h["housing_other"] = np.where(other_housing, np.asarray(HOUSING_OTHER)[rng.integers(0, len(HOUSING_OTHER), n)],
                                  None)
    h["hh_size"] = households["hh_size"].to_numpy()
    for name in K6:
        h[name] = _codes_as_text(households[name])
    h["care_dependent"] = households["care_dependent"].astype(str).to_numpy()
    h["caregiver_hours"] = pd.array(households["caregiver_hours"].round(), dtype="Int64")
    for name in ("caregiver_strain", "family_conflict", "parenting_stress", "hardship"):
        h[name] = households[name].astype(object).where(households[name].notna(), None).to_numpy()
    for team in TEAMS:
        names = SERVICES[team] + ["other"]
        for question in SERVICE_QUESTIONS:
            var = f"{question}_{team}"
            cols = [f"{var}.{o}" for o in names]
            h[var] = _joined(households[cols], names)
            for c in cols:
                h[c] = households[c].to_numpy()
            if question == "need":
                texts = np.asarray(OTHER_TEXT[team])[rng.integers(0, len(OTHER_TEXT[team]), n)]
                h[f"need_{team}_other"] = np.where(households[f"need_{team}.other"].to_numpy() == 1, texts, None)
    cols = [f"priorities.{t}" for t in TEAMS]
    h["priorities"] = _joined(households[cols], list(TEAMS))
    for c in cols:
        h[c] = households[c].to_numpy()
    h["aware_centre"] = households["aware_centre"].astype(str).to_numpy()
    h["comments"] = np.where(rng.random(n) < comment_share, np.asarray(COMMENTS)[rng.integers(0, len(COMMENTS), n)], None)
    hh_table = pd.DataFrame(h)

    q = {"person_id": persons["person_id"].to_numpy(), "household_id": persons["household_id"].to_numpy(),
         "age": persons["age"].to_numpy().astype(int)}
    for name in ("sex", "relation", "registration"):
        q[name] = persons[name].astype(str).to_numpy()
    for name in WG + ADL + list(IADL_LEVELS):
        q[name] = _codes_as_text(persons[name])
    for name in YOUTH:
        q[name] = persons[name].astype(object).where(persons[name].notna(), None).to_numpy()
    return hh_table, pd.DataFrame(q)


def draw_sample(population: Population, seed: int) -> Sample:
    """Stratified two-stage sample of ``population`` with nonresponse.

    Strata = 村居; stage 1: residential groups, PPS systematic by household count (``sample.psus`` in
    total, allocated proportional to households, min 2 per stratum) or SRS; stage 2: SRS of
    ``households_issued_per_psu`` households in each sampled group. A household responds with logistic
    propensity lower for migrant/mixed and young-headed households and higher with an elderly member
    (simulation.yaml ``sample``), so unweighted estimates are biased. Returns clean tables of the
    responding households, the design table and the issued households.
    """
    p = population.params["sample"]
    rng = np.random.default_rng(seed)
    allocation = _allocate(population.groups, p["psus"])
    psus = _select_psus(rng, population.groups, allocation, p["psu_selection"])
    hh = population.households
    in_psu = hh["psu"].isin(psus["psu"]).to_numpy()
    frame = hh.loc[in_psu, ["household_id", "cunju", "psu", "hh_registration", "head_age", "has_elderly"]].copy()
    frame["psu"] = frame["psu"].astype(str)
    frame["_key"] = rng.random(len(frame))
    take = psus.set_index("psu")["psu_households"].clip(upper=p["households_issued_per_psu"])
    frame["_rank"] = frame.groupby("psu")["_key"].rank(method="first")
    issued = frame[frame["_rank"] <= frame["psu"].map(take)].drop(columns=["_key", "_rank"])
    eta = (p["response_intercept"] + p["response_migrant"] * (issued["hh_registration"] == "nonlocal")
           + p["response_mixed"] * (issued["hh_registration"] == "mixed")
           + p["response_elderly_member"] * issued["has_elderly"] + p["response_young_head"] * (issued["head_age"] < 30))
    issued = issued.assign(responded=rng.random(len(issued)) < 1 / (1 + np.exp(-eta.to_numpy(dtype=float))))
    design = psus.assign(households_issued=psus["psu"].map(take).to_numpy().astype(int),
                         p_hh=(psus["psu"].map(take) / psus["psu_households"]).to_numpy())
    design = design[["cunju", "psu", "stratum_psus", "sampled_psus", "psu_households", "p_psu",
                     "households_issued", "p_hh"]].reset_index(drop=True)
    respondents = issued.loc[issued["responded"], "household_id"]
    households = hh[hh["household_id"].isin(respondents)]
    persons = population.persons[population.persons["household_id"].isin(respondents)]
    hh_table, person_table = clean_tables(households, persons, rng, population.params["services"]["comment_share"])
    issued = issued[["household_id", "cunju", "psu", "responded"]].astype({"cunju": str}).reset_index(drop=True)
    return Sample(households=hh_table, persons=person_table, design=design, issued=issued)


# ----------------------------------------------------------------------------------------------------------
# Planted truth
# ----------------------------------------------------------------------------------------------------------

def _summaries(table: pd.DataFrame, columns: list[str], groups: dict[str, pd.Series]) -> pd.DataFrame:
    """count (flag = 1), denominator (flag known) and proportion of 0/1/NaN columns, overall and by group."""
    flags = table[columns].astype("float64")
    rows = []
    everyone = pd.Series(pd.Categorical.from_codes(np.zeros(len(table), dtype=np.int8), ["all"]), index=table.index)
    for group, values in {"all": everyone, **groups}.items():
        grouped = flags.groupby(values.astype("category").to_numpy(), sort=True, observed=True)
        count, denominator = grouped.sum(), grouped.count()
        long = pd.DataFrame({"count": count.stack(), "denominator": denominator.stack()})
        long.index.names = ["group_value", "variable"]
        long = long.reset_index().assign(group=group)
        long["group_value"] = long["group_value"].astype(str)
        rows.append(long)
    out = pd.concat(rows, ignore_index=True)
    out["proportion"] = out["count"] / out["denominator"].where(out["denominator"] > 0)
    return out


def truth(population: Population, definitions: dict | None = None) -> pd.DataFrame:
    """Finite-population values of every need indicator, overall and by 村居 (and registration, sex, age band
    for persons): columns team, variable, unit, group, group_value, count, denominator, proportion.

    Flags come from :func:`analysis.indicators.add_need_flags` applied to the population itself, so the truth
    uses exactly the definitions the demand stage estimates with (``analysis/needs.yaml``); each team's
    indicators are restricted to the team's universe (e.g. 60+ for the elderly team), as ``in_need_<team>``
    is. Household service rows (``need:<service>``, ``receiving:<service>``, ``would_use:<service>``) count
    households ticking each service line (the staffing drivers).
    """
    from analysis.indicators import add_need_flags, load_needs

    definitions = load_needs() if definitions is None else definitions
    households, persons = add_need_flags(population.households, population.persons, definitions)
    hh_groups = {"cunju": households["cunju"], "registration": households["hh_registration"]}
    person_groups = {"cunju": persons["cunju"], "registration": persons["registration"], "sex": persons["sex"],
                     "age_band": pd.Series(age_band(persons["age"]), index=persons.index)}
    parts = []
    for team, spec in definitions["teams"].items():
        persons_unit = spec["unit"] == "persons"
        table = persons if persons_unit else households
        inside = pd.Series(True, index=table.index)
        universe = spec.get("universe") or {}
        if "age_min" in universe:
            inside &= table["age"] >= universe["age_min"]
        if "age_max" in universe:
            inside &= table["age"] <= universe["age_max"]
        columns = list(dict.fromkeys(spec["indicators"] + [f"in_need_{team}", f"unmet_{team}"]))
        scoped = table[columns].astype("float64").where(inside, axis=0)
        part = _summaries(scoped, columns, person_groups if persons_unit else hh_groups)
        parts.append(part.assign(team=team, unit=spec["unit"]))
        service_cols = {f"{q}:{s}": households[f"{q}_{team}.{s}"] for q in SERVICE_QUESTIONS for s in spec["services"]}
        services = pd.DataFrame(service_cols, index=households.index)
        parts.append(_summaries(services, list(service_cols), hh_groups).assign(team=team, unit="households"))
    out = pd.concat(parts, ignore_index=True)
    out["count"] = out["count"].round().astype(int)
    out = out[["team", "variable", "unit", "group", "group_value", "count", "denominator", "proportion"]]
    return out.sort_values(["team", "unit", "variable", "group", "group_value"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------
# Raw exports with injected faults
# ----------------------------------------------------------------------------------------------------------

FAULT_KINDS = ["exact_duplicate", "soft_duplicate", "speeder", "sentinel", "out_of_range", "impossible_value",
               "skip_logic", "roster_inconsistency", "other_matches_option", "cunju_variant", "pii_in_text",
               "test_submission", "no_consent"]
SURNAMES = list("陈李黄梁何罗张林周吴郭冯麦苏潘杨刘胡邓谢")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰志红文")
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])  # GB 11643-1999 check digit
ID_CHECK = np.array(list("10X98765432"))
TRADITIONAL = {"黄连社区": "黃連社區", "勒流社区": "勒流社區", "龙眼": "龍眼", "冲鹤村": "沖鶴村"}


def _fake_names(rng, n):
    """Synthetic two- or three-character Chinese names from common surnames (not real people)."""
    given_len = np.where(rng.random(n) < 0.7, 2, 1)
    s = np.asarray(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    g1 = np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)]
    g2 = np.where(given_len == 2, np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)], "")
    return np.char.add(np.char.add(s, g1), g2)


def _fake_phones(rng, n):
    """11-digit mobile numbers 1[3589]x-0000-xxxx: valid in form, the 0000 block marks them synthetic."""
    prefix = np.char.add("1", np.asarray(list("3589"))[rng.integers(0, 4, n)])
    return np.char.add(np.char.add(np.char.add(prefix, rng.integers(0, 10, n).astype(str)), "0000"),
                       np.char.zfill(rng.integers(0, 10000, n).astype(str), 4))


def _fake_ids(rng, ages):
    """18-digit resident ID numbers: Shunde area code 440606, birth date from the age in 2012, sequence
    9xx, and a valid GB 11643 check digit (so format checks pass and PII scans are meaningful)."""
    n = len(ages)
    year = 2012 - np.asarray(ages, dtype=int)
    month, day = rng.integers(1, 13, n), rng.integers(1, 29, n)
    body = np.char.add(np.char.add(np.char.add(np.char.add("440606", year.astype(str)),
                                               np.char.zfill(month.astype(str), 2)), np.char.zfill(day.astype(str), 2)),
                       np.char.add("9", np.char.zfill(rng.integers(0, 100, n).astype(str), 2)))
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(n, 17) - ord("0")
    return np.char.add(body, ID_CHECK[(digits * ID_WEIGHTS).sum(axis=1) % 11])


def _uuids(rng, n):
    """Version-4 UUID strings from the generator's random bytes (deterministic in the seed)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexes = [row.tobytes().hex() for row in raw]
    return np.array([f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in hexes])


def _records(sample: Sample, population: Population, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Submissions as the form records them: clean answers plus metadata, PII and refusals (consent = no)."""
    p = population.params["interview"]
    hh, persons = sample.households.copy(), sample.persons.copy()
    refused = sample.issued[~sample.issued["responded"]]
    refused = refused[rng.random(len(refused)) < population.params["sample"]["refusal_share_of_nonresponse"]]
    refusals = pd.DataFrame({"household_id": refused["household_id"].to_numpy(), "consent": "no",
                             "_psu": refused["psu"].to_numpy()})
    hh["_psu"] = hh["psu"]
    records = pd.concat([hh, refusals], ignore_index=True)
    n = len(records)
    records["_uuid"] = _uuids(rng, n)
    psus = np.sort(records["_psu"].unique())
    psu_day = pd.Series(rng.integers(0, p["n_days"], len(psus)), index=psus)
    psu_enum = pd.Series(rng.integers(1, p["n_enumerators"] + 1, len(psus)), index=psus)
    day = records["_psu"].map(psu_day).to_numpy() + (rng.random(n) < p["next_day_share"])
    start = (pd.Timestamp(p["first_day"]) + pd.to_timedelta(day, unit="D")
             + pd.to_timedelta(rng.integers(9 * 3600, 19 * 3600, n), unit="s"))
    minutes = np.clip(p["duration_median_min"] * np.exp(rng.normal(0, p["duration_sigma"], n)),
                      p["duration_min"], p["duration_max"])
    minutes = np.where(records["consent"] == "no", rng.uniform(1, 4, n), minutes)
    records["start"] = start
    records["end"] = start + pd.to_timedelta(np.round(minutes * 60), unit="s")
    records["_submission_time"] = records["end"] + pd.to_timedelta(rng.integers(30, 6 * 3600, n), unit="s")
    enum = records["_psu"].map(psu_enum).to_numpy()
    records["enumerator"] = np.char.add("E", np.char.zfill(enum.astype(str), 2))
    devices = np.array([f"collect:{rng.bytes(8).hex()}" for _ in range(p["n_enumerators"] + 1)])
    records["deviceid"] = devices[enum]
    ok = records["consent"] == "yes"
    names = _fake_names(rng, len(persons))
    persons["member_name"] = names
    persons = persons.merge(records[["household_id", "_uuid"]], on="household_id", how="left")
    first_adult = persons[persons["age"] >= 18].groupby("household_id", sort=False)["member_name"].first()
    records["resp_name"] = records["household_id"].map(first_adult).where(ok, None)
    records["phone"] = np.where(ok, _fake_phones(rng, n), None)
    records["id_number"] = np.where(ok & (rng.random(n) < p["id_number_given"]), _fake_ids(rng, records["resp_age"].fillna(40)), None)
    cunju_names = population.cunju.set_index("cunju")["name_zh"]
    group_no = records["psu"].astype(str).str[-2:].str.lstrip("0")
    records["address"] = ("勒流街道" + records["cunju"].map(cunju_names).fillna("") + group_no + "组"
                          + pd.Series(rng.integers(1, 200, n).astype(str), index=records.index) + "号").where(ok, None)
    return records, persons


def _fault(rows, uuid, field_name, kind, original, injected, member=None):
    """One manifest row; values rendered as the Kobo export shows them (times as Kobo timestamps)."""
    def shown(value):
        if isinstance(value, pd.Timestamp):
            return value.strftime("%Y-%m-%dT%H:%M:%S.000+08:00")
        return _text(pd.Series([value], dtype=object)).iloc[0]
    rows.append({"uuid": uuid, "field": field_name, "member": "" if member is None else str(member), "kind": kind,
                 "original_value": shown(original), "injected_value": shown(injected)})


def _inject_faults(records, persons, population, rng, form):
    """Plant every fault kind in the submissions; returns (records, persons, manifest).

    Each field-level fault goes to a different consenting household. Rates come from simulation.yaml
    ``faults`` (docs/sources.md §8 for sentinel codes, soft duplicates and speeders; the rest ASSUMPTION).
    """
    f = population.params["faults"]
    rows = []
    records, persons = records.copy(), persons.copy()
    ok_idx = np.flatnonzero(records["consent"].to_numpy() == "yes")
    pool = list(rng.permutation(ok_idx))
    n_ok = len(ok_idx)

    def take(rate):
        k = max(1, round(rate * n_ok))
        picked = [pool.pop() for _ in range(min(k, len(pool)))]
        return picked

    def set_value(i, column, value, kind):
        _fault(rows, records.at[i, "_uuid"], column, kind, records.at[i, column], value)
        records.at[i, column] = value

    members = persons.groupby("household_id").indices

    def set_person(j, column, value, kind):
        position = int(np.flatnonzero(members[persons.at[j, "household_id"]] == j)[0]) + 1
        _fault(rows, persons.at[j, "_uuid"], column, kind, persons.at[j, column], value, member=position)
        persons.at[j, column] = value

    for i in take(f["speeder"]):
        set_value(i, "end", records.at[i, "start"] + pd.Timedelta(seconds=int(rng.integers(240, 900))), "speeder")
    for n_i, i in enumerate(take(f["sentinel"])):
        choice = n_i % 4
        if choice == 0:
            set_value(i, "hh_size", 99, "sentinel")
        elif choice == 1:
            set_value(i, str(rng.choice(K6)), "99", "sentinel")
        elif choice == 2:
            set_value(i, "resp_age", int(rng.choice([99, 999])), "sentinel")
        else:
            j = members[records.at[i, "household_id"]][0]
            set_person(j, "age", 999, "sentinel")
    for n_i, i in enumerate(take(f["out_of_range"])):
        if n_i % 3 == 0:
            set_value(i, "resp_age", int(rng.integers(12, 18)), "out_of_range")
        elif n_i % 3 == 1:
            set_person(members[records.at[i, "household_id"]][-1], "age", int(rng.integers(115, 140)), "out_of_range")
        else:
            set_value(i, "caregiver_hours", int(rng.integers(170, 400)), "out_of_range")
            if records.at[i, "care_dependent"] != "yes":
                _fault(rows, records.at[i, "_uuid"], "care_dependent", "out_of_range", records.at[i, "care_dependent"],
                       "yes")
                records.at[i, "care_dependent"] = "yes"
    for i in take(f["impossible_value"]):
        idx = members[records.at[i, "household_id"]]
        head_age = persons.at[idx[0], "age"]
        child = [j for j in idx if persons.at[j, "relation"] == "child"]
        if child:
            set_person(child[0], "age", int(min(head_age + 20, 110)), "impossible_value")
        else:
            set_person(idx[0], "age", 3, "impossible_value")  # a household head aged 3
    for n_i, i in enumerate(take(f["skip_logic"])):
        if records.at[i, "care_dependent"] == "no":
            set_value(i, "caregiver_hours", int(rng.integers(5, 40)), "skip_logic")
        else:
            idx = members[records.at[i, "household_id"]]
            young = [j for j in idx if persons.at[j, "age"] < 60]
            j = young[0] if young else idx[0]
            set_person(j, "adl_bathing", "1", "skip_logic")
    for i in take(f["roster_inconsistency"]):
        set_value(i, "hh_size", int(records.at[i, "hh_size"]) + int(rng.integers(1, 3)), "roster_inconsistency")
    labels = form.choices.set_index(["list_name", "name"])["label_zh"]
    for i in take(f["other_matches_option"]):
        team = str(rng.choice(TEAMS))
        unselected = [s for s in SERVICES[team] if records.at[i, f"need_{team}.{s}"] == 0]
        service = unselected[0] if unselected else SERVICES[team][0]
        text = labels[(f"{team}_services", service)]
        if records.at[i, f"need_{team}.other"] != 1:
            records.at[i, f"need_{team}.other"] = 1
            records.at[i, f"need_{team}"] = (str(records.at[i, f"need_{team}"]) + " other").strip()
        set_value(i, f"need_{team}_other", text, "other_matches_option")
    names = population.cunju.set_index("cunju")["name_zh"]
    for i in take(f["cunju_variant"]):
        code = records.at[i, "cunju"]
        name = names[code]
        variants = [TRADITIONAL.get(name, name), f" {name}", f"{name[:2]} {name[2:]}" if len(name) > 2 else f"{name} ",
                    name + "　", code.upper()]
        set_value(i, "cunju", variants[int(rng.integers(0, len(variants)))], "cunju_variant")
    for i in take(f["pii_in_text"]):
        phone = _fake_phones(rng, 1)[0]
        set_value(i, "comments", f"有需要请打电话{phone}找{records.at[i, 'resp_name']}", "pii_in_text")

    # duplicates copy households that carry no other fault, so each planted fault is listed exactly once
    originals = np.array([pool.pop() for _ in range(max(1, round(f["exact_duplicate"] * n_ok)))])
    extra, extra_persons = [], []
    for i in originals:
        extra.append(records.loc[[i]])
        extra_persons.append(persons[persons["_uuid"] == records.at[i, "_uuid"]])
        _fault(rows, records.at[i, "_uuid"], "record", "exact_duplicate", "", "second identical submission")
    soft = np.array([pool.pop() for _ in range(max(1, round(f["soft_duplicate"] * n_ok)))])
    new_ids = _uuids(rng, len(soft))
    for i, new_id in zip(soft, new_ids):
        copy = records.loc[[i]].copy()
        copy["_uuid"] = new_id
        item = str(rng.choice(K6))
        old = copy[item].iloc[0]
        copy[item] = str((int(old) + 1) % 5) if old is not None and str(old).isdigit() else "1"
        copy["_submission_time"] = copy["_submission_time"] + pd.Timedelta(hours=int(rng.integers(1, 48)))
        extra.append(copy)
        extra_persons.append(persons[persons["_uuid"] == records.at[i, "_uuid"]].assign(_uuid=new_id))
        _fault(rows, new_id, "record", "soft_duplicate", records.at[i, "_uuid"], f"copy of {records.at[i, '_uuid']}; {item} changed")
    test_ids = _uuids(rng, f["test_submissions"])
    first_day = pd.Timestamp(population.params["interview"]["first_day"])
    for k, test_id in enumerate(test_ids):
        start = first_day - pd.Timedelta(days=3 - k) + pd.Timedelta(hours=10)
        test = pd.DataFrame({"_uuid": [test_id], "consent": ["yes"], "enumerator": ["E00"], "deviceid": ["collect:test"],
                             "start": [start], "end": [start + pd.Timedelta(minutes=2)],
                             "_submission_time": [start + pd.Timedelta(minutes=3)], "cunju": ["c01"], "psu": ["c01-g01"],
                             "resp_name": ["测试"], "resp_age": [30], "resp_sex": ["male"], "hh_size": [1],
                             "comments": ["test 测试"], "household_id": [f"test{k}"]})
        extra.append(test)
        extra_persons.append(pd.DataFrame({"_uuid": [test_id], "household_id": [f"test{k}"], "person_id": [f"test{k}-01"],
                                           "member_name": ["测试"], "age": [30], "sex": ["male"], "relation": ["head"],
                                           "registration": ["local"]}))
        _fault(rows, test_id, "record", "test_submission", "", "test")
    for i in np.flatnonzero(records["consent"].to_numpy() == "no"):
        _fault(rows, records.at[i, "_uuid"], "consent", "no_consent", "", "no")
    records = pd.concat([records, *extra], ignore_index=True)
    persons = pd.concat([persons, *extra_persons], ignore_index=True)
    manifest = pd.DataFrame(rows, columns=["uuid", "field", "member", "kind", "original_value", "injected_value"])
    return records, persons, manifest


def _text(values: pd.Series) -> pd.Series:
    """Render answers as export text: missing -> "", whole floats -> "13", the rest as str."""
    def one(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return pd.Series([one(v) for v in values.tolist()], index=values.index, dtype=object)


def _kobo_time(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m-%dT%H:%M:%S.000+08:00")


def kobo_tables(records: pd.DataFrame, persons: pd.DataFrame, form) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Kobo export (KoboToolbox v2 "XML values and headers", group separator "/", select_multiple
    "both"; docs/sources.md §5.4): household sheet ``leliu_needs`` and repeat sheet ``roster`` as text tables."""
    records = records.sort_values(["_submission_time", "_uuid"], kind="stable").reset_index(drop=True)
    records["_index"] = np.arange(1, len(records) + 1)
    records["_id"] = 4_200_000 + records["_index"]
    consented = records["consent"] == "yes"
    out = {}
    fields = form.data_fields()
    for _, row in fields[fields["repeat"].isna()].iterrows():
        name, header = row["name"], form.export_column(row["name"])
        if name in ("start", "end"):
            out[header] = _kobo_time(records[name])
        elif name == "today":
            out[header] = records["start"].dt.strftime("%Y-%m-%d")
        else:
            out[header] = _text(records[name]) if name in records else pd.Series("", index=records.index, dtype=object)
        if row["base_type"] == "select_multiple":
            for option in form.choice_names(name):
                col = f"{name}.{option}"
                values = _text(records[col]) if col in records else pd.Series("", index=records.index, dtype=object)
                out[f"{header}/{option}"] = values.where(consented, "")
    out["_id"] = records["_id"].astype(str)
    out["_uuid"] = records["_uuid"]
    out["_submission_time"] = (records["_submission_time"] - pd.Timedelta(hours=8)).dt.strftime("%Y-%m-%dT%H:%M:%S")
    out["_validation_status"] = ""
    out["_status"] = "submitted_via_web"
    out["_submitted_by"] = ""
    out["__version__"] = "vLeliu2012-04"
    out["_index"] = records["_index"].astype(str)
    households = pd.DataFrame(out)

    parent = records.drop_duplicates("_uuid", keep="first").set_index("_uuid")
    # an exact duplicate shares its uuid: its roster is listed again under the second submission
    dup_index = records.groupby("_uuid")["_index"].agg(list)
    persons = persons.assign(_parent_list=persons["_uuid"].map(dup_index)).explode("_parent_list")
    persons = persons.drop_duplicates(["person_id", "_parent_list", "_uuid"])
    persons = persons.assign(_parent_index=persons["_parent_list"].astype(int))
    persons = persons.sort_values(["_parent_index", "person_id"], kind="stable").reset_index(drop=True)
    roster = {}
    for _, row in fields[fields["repeat"] == "roster"].iterrows():
        name = row["name"]
        roster[form.export_column(name)] = _text(persons[name]) if name in persons else pd.Series(
            "", index=persons.index, dtype=object)
    roster["_index"] = pd.Series(np.arange(1, len(persons) + 1), index=persons.index).astype(str)
    roster["_parent_table_name"] = "leliu_needs"
    roster["_parent_index"] = persons["_parent_index"].astype(str)
    by_index = records.set_index("_index")
    roster["_submission__id"] = persons["_parent_index"].map(by_index["_id"]).astype(str)
    roster["_submission__uuid"] = persons["_uuid"]
    roster["_submission__submission_time"] = persons["_parent_index"].map(households.set_index(
        records["_index"])["_submission_time"])
    del parent
    return households, pd.DataFrame(roster)


def _numeric_for_xlsx(table: pd.DataFrame, integer_headers: list[str]) -> pd.DataFrame:
    """Text table -> workbook table: "" -> empty cell, integer questions and _id/_index as numbers."""
    out = table.replace("", None)
    for col in integer_headers:
        if col in out:
            numbers = pd.to_numeric(out[col], errors="coerce")
            out[col] = numbers.astype("Int64").astype(object).where(numbers.notna(), out[col])
    return out


def wjx_table(kobo_households: pd.DataFrame, kobo_roster: pd.DataFrame, form) -> pd.DataFrame:
    """The same submissions as a 问卷星 "按选项文本" export (docs/sources.md §5.5).

    Six metadata columns (序号 = Kobo ``_index``, 提交答卷时间, 所用时间 "528秒", 来源, 来源详情, 来自IP from the
    192.0.2.0/24 documentation range), then one column per question headed "<n>、<中文题目>" in form order.
    问卷星 has no repeat groups, so the roster is flattened as blocks "成员k：<题目>" for k = 1..K (K = the
    largest roster in the export), as a 问卷星 form would repeat the member questions. Answers are Chinese
    labels; select_multiple joined with "┋"; -2 = skipped by jump logic (not relevant, or after refusal),
    -3 = member slot not shown (household has fewer members), "(空)" = optional text left blank.
    """
    labels = form.choices.set_index(["list_name", "name"])["label_zh"]
    fields = form.data_fields()
    fields = fields[~fields["base_type"].isin(["start", "end", "today", "deviceid"])]
    consented = kobo_households["consent"] == "yes"
    start = pd.to_datetime(kobo_households["start"].str[:19])
    end = pd.to_datetime(kobo_households["end"].str[:19])
    out = {"序号": kobo_households["_index"], "提交答卷时间": end.dt.strftime("%Y/%m/%d %H:%M:%S"),
           "所用时间": ((end - start).dt.total_seconds().astype(int).astype(str) + "秒"),
           "来源": "手机提交", "来源详情": "直接访问",
           "来自IP": "192.0.2." + (kobo_households["_index"].astype(int) % 250 + 1).astype(str) + "(广东-佛山)"}

    def render(row, values: pd.Series, asked: pd.Series) -> pd.Series:
        kind, list_name = row["base_type"], row["list_name"]
        if kind == "select_one":
            text = values.map(lambda v: labels.get((list_name, v), v) if v else v)
        elif kind == "select_multiple":
            text = values.map(lambda v: "┋".join(labels.get((list_name, c), c) for c in v.split()) if v else v)
        else:
            text = values
        blank = "(空)" if kind == "text" and not row["relevant"] else "-2"
        return text.where(values != "", np.where(asked, blank, "-2")).where(asked, "-2")

    roster = kobo_roster.assign(_k=kobo_roster.groupby("_parent_index").cumcount() + 1)
    k_max = int(roster["_k"].max()) if len(roster) else 0
    n, roster_done = 1, False
    for _, row in fields.iterrows():
        if row["repeat"] == "roster":
            if roster_done:
                continue
            roster_done = True
            roster_fields = fields[fields["repeat"] == "roster"]
            for k in range(1, k_max + 1):
                slot = roster[roster["_k"] == k].set_index("_parent_index")
                present = kobo_households["_index"].isin(slot.index)
                for _, rrow in roster_fields.iterrows():
                    header = form.export_column(rrow["name"])
                    values = kobo_households["_index"].map(slot[header]).fillna("")
                    cell = render(rrow, values, consented & present)
                    out[f"{n}、成员{k}：{rrow['label_zh']}"] = cell.where(present | ~consented, "-3")
                    n += 1
            continue
        values = kobo_households[form.export_column(row["name"])]
        asked = consented | (row["name"] in ("enumerator", "consent"))
        out[f"{n}、{row['label_zh']}"] = render(row, values, pd.Series(asked, index=values.index))
        n += 1
    return pd.DataFrame(out)


def _sample_params(params: dict, n_households: int | None, n_groups: int) -> dict:
    """Sample size override: enough PSUs and households per PSU for about ``n_households`` responses."""
    if n_households is None:
        return params
    s = dict(params["sample"])
    issued = n_households / s["expected_response_rate"]
    s["psus"] = int(np.clip(round(issued / s["households_issued_per_psu"]), 2 * params["population"]["n_cunju"],
                            n_groups))
    s["households_issued_per_psu"] = max(1, int(np.ceil(issued / s["psus"])))
    return {**params, "sample": s}


def write_survey(seed: int, out_dir: str | Path, n_households: int | None = None, scale: float = 1.0,
                 form_path: str | Path | None = None) -> dict[str, Path]:
    """Simulate the survey with ``seed`` and write every file under ``out_dir`` (docs/contracts.md layout):

    raw/kobo/leliu_needs_survey.xlsx, raw/kobo/leliu_needs.csv, raw/kobo/roster.csv (UTF-8 with BOM),
    raw/wjx/leliu_needs_wjx.csv (GB18030), raw/PROVENANCE.json, frame/cunju.csv, frame/population_frame.csv,
    frame/sample_design.csv, simulation/truth.csv, simulation/faults.csv. Same seed -> identical bytes.
    ``n_households`` ≈ responding households (default: simulation.yaml), ``scale`` shrinks the population.
    """
    import hashlib
    import json

    from analysis import __version__
    from analysis.instrument import load_form, write_xlsx

    out_dir = Path(out_dir)
    root = Path(__file__).resolve().parent.parent
    form = load_form(form_path or root / "survey" / "instrument")
    population = build_population(seed, scale=scale)
    population.params = _sample_params(population.params, n_households, len(population.groups))
    sample = draw_sample(population, seed + 1)
    rng = np.random.default_rng(seed + 2)
    records, persons = _records(sample, population, rng)
    records, persons, manifest = _inject_faults(records, persons, population, rng, form)
    kobo_hh, kobo_roster = kobo_tables(records, persons, form)
    paths = {
        "kobo_xlsx": out_dir / "raw" / "kobo" / "leliu_needs_survey.xlsx",
        "kobo_households": out_dir / "raw" / "kobo" / "leliu_needs.csv",
        "kobo_roster": out_dir / "raw" / "kobo" / "roster.csv",
        "wjx": out_dir / "raw" / "wjx" / "leliu_needs_wjx.csv",
        "cunju": out_dir / "frame" / "cunju.csv",
        "population_frame": out_dir / "frame" / "population_frame.csv",
        "sample_design": out_dir / "frame" / "sample_design.csv",
        "truth": out_dir / "simulation" / "truth.csv",
        "faults": out_dir / "simulation" / "faults.csv",
        "provenance": out_dir / "raw" / "PROVENANCE.json",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    integer_fields = form.survey.loc[form.survey["base_type"] == "integer", "name"]
    integer_headers = [form.export_column(n) for n in integer_fields]
    write_xlsx({"leliu_needs": _numeric_for_xlsx(kobo_hh, integer_headers + ["_id", "_index"]),
                "roster": _numeric_for_xlsx(kobo_roster, integer_headers + ["_index", "_parent_index",
                                                                            "_submission__id"])},
               paths["kobo_xlsx"])
    kobo_hh.to_csv(paths["kobo_households"], index=False, encoding="utf-8-sig", lineterminator="\n")
    kobo_roster.to_csv(paths["kobo_roster"], index=False, encoding="utf-8-sig", lineterminator="\n")
    wjx_table(kobo_hh, kobo_roster, form).to_csv(paths["wjx"], index=False, encoding="gb18030", lineterminator="\r\n")
    population.cunju.to_csv(paths["cunju"], index=False, lineterminator="\n")
    population_frame(population).to_csv(paths["population_frame"], index=False, lineterminator="\n")
    sample.design.to_csv(paths["sample_design"], index=False, lineterminator="\n")
    truth(population).to_csv(paths["truth"], index=False, lineterminator="\n")
    manifest.to_csv(paths["faults"], index=False, lineterminator="\n")
    provenance = {
        "simulated": True,
        "seed": seed,
        "generator": "analysis.simulate",
        "generator_version": __version__,
        "parameters": "analysis/simulation.yaml",
        "parameters_sha256": hashlib.sha256(json.dumps(population.params, sort_keys=True, ensure_ascii=False)
                                            .encode()).hexdigest(),
        "scale": scale,
        "residents": len(population.persons),
        "households": len(population.households),
        "households_issued": len(sample.issued),
        "households_responding": len(sample.households),
        "submissions": len(kobo_hh),
        "note": "SIMULATED DATA: generated from public population figures and assumptions; not real Leliu responses.",
        "files": {name: hashlib.sha256(path.read_bytes()).hexdigest()
                  for name, path in sorted(paths.items()) if name != "provenance"},
    }
    paths["provenance"].write_text(json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return paths
