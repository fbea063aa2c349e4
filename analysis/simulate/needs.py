"""Answers of every person and household, drawn from their members with correlated needs.

Persons: WG-SS (disability rising with age in the 2006 national type mix), Katz ADL and Lawton IADL for
the old, youth items. Households: respondent, K6, caregiving, family module, and for each team's service
lines need / receiving / would use, driven by the household flags that ``simulation.yaml`` names
(``teams.<team>.drivers``); priorities and awareness of the centre. All rates are in simulation.yaml.

Every answer comes from keyed uniforms (:func:`analysis.simulate.draws.keyed_uniform`) of the person or
household, so a unit answers the same in a later wave unless its age, members or the wave's rates
change. ``wave`` (a dict of rate overrides, ``waves.<year>`` of simulation.yaml) moves the centre's
reach: receiving given need and awareness by team.
"""

from __future__ import annotations

import numpy as np

from analysis.errors import ConfigError
from analysis.indicators import IADL_LEVELS
from analysis.simulate.draws import by_household, index_of, keyed_normal, keyed_uniform, pick, unit_keys
from analysis.simulate.params import ADL, K6, PARAMS_FILE, WG, YOUTH

WG_DOMAINS = ["seeing", "hearing", "walking", "cognition", "selfcare", "communication"]


def person_answers(seed: int, persons, p) -> dict[str, np.ndarray]:
    """WG-SS, Katz ADL, Lawton IADL and youth answers for every person (codes as in the instrument)."""
    key = unit_keys(persons["person_id"])

    def u(item, width=None):
        return keyed_uniform(seed, key, item, width)

    age = persons["age"].to_numpy()
    local = persons["local"].to_numpy()
    d = p["disability"]
    band = np.searchsorted(d["age_breaks"], age, side="right") - 1
    disabled = u("disabled") < np.asarray(d["prevalence"])[band]
    types = list(d["type_mix"])
    mix = np.asarray([d["type_mix"][t] for t in types]) / sum(d["type_mix"].values())
    kind = np.where(disabled, np.asarray(types, dtype=object)[index_of(u("disability_type"), mix)], "")
    severe = disabled & (u("severe") < d["severe_share"])
    wg = np.where(u("wg_some", 6) < np.asarray(d["some_difficulty_by_age"])[band][:, None], 2, 1)
    alot = np.zeros((len(age), 6), dtype=bool)
    col = {name: i for i, name in enumerate(WG_DOMAINS)}
    alot[kind == "visual", col["seeing"]] = True
    alot[kind == "hearing", col["hearing"]] = True
    alot[kind == "speech", col["communication"]] = True
    physical = kind == "physical"
    alot[physical, col["walking"]] = True
    alot[:, col["selfcare"]] |= physical & (u("physical_selfcare") < d["physical_selfcare"])
    intellectual = kind == "intellectual"
    alot[intellectual, col["cognition"]] = True
    alot[:, col["communication"]] |= intellectual & (
        u("intellectual_communication") < d["intellectual_communication"]
    )
    mental = kind == "mental"
    missed = mental & (u("mental_wg_miss") < d["mental_wg_miss"])
    alot[mental & ~missed, col["cognition"]] = True
    wg[missed, col["cognition"]] = 2
    pair = np.argsort(u("multiple_domains", 5), axis=1)[:, :2]  # two of the first five domains
    multiple = np.flatnonzero(kind == "multiple")
    alot[multiple[:, None], pair[multiple]] = True
    wg = np.where(alot, np.where(severe[:, None], 4, 3), wg).astype(float)
    wg[age < 5] = np.nan

    e = p["elderly"]
    old = age >= 60
    p_adl = np.select(
        [age >= 80, age >= 70, age >= 60],
        [e["adl_dependent_by_age"][80], e["adl_dependent_by_age"][70], e["adl_dependent_by_age"][60]],
        0.0,
    )
    p_adl = np.minimum(np.where(disabled, p_adl * e["adl_disabled_factor"], p_adl), 0.9)
    adl_dep = old & (u("adl_dependent") < p_adl)
    weights = np.asarray(e["adl_items_dependent_weights"]) / sum(e["adl_items_dependent_weights"])
    k = 1 + index_of(u("adl_items"), weights)
    adl = np.where(np.arange(6)[None, :] < np.where(adl_dep, k, 0)[:, None], 0, 1).astype(float)
    adl[~old] = np.nan
    frailty = (
        e["iadl_frailty_age_per_decade"] * (age - 60) / 10
        + e["iadl_frailty_disabled"] * disabled
        + e["iadl_frailty_adl"] * adl_dep
        + keyed_normal(seed, key, "iadl_frailty")
    )
    out = {"disabled_type": kind, "disabled": disabled, "adl_dep": adl_dep}
    for i, name in enumerate(WG):
        out[name] = wg[:, i]
    for i, name in enumerate(ADL):
        out[name] = adl[:, i]
    for name, levels in IADL_LEVELS.items():
        latent = frailty + e["iadl_item_noise"] * keyed_normal(seed, key, name)
        cuts = e["iadl_threshold"] + e["iadl_step"] * np.arange(levels - 1)
        out[name] = np.where(old, 1 + (latent[:, None] > cuts[None, :]).sum(axis=1), np.nan)

    y = p["youth"]

    def rate(spec):
        return np.where(local, spec["local"], spec["nonlocal"])

    def yes_no(asked, item, prob):
        return np.where(asked, np.where(u(item) < prob, "yes", "no"), None)

    in_6_14 = (age >= 6) & (age <= 14)
    in_10_24 = (age >= 10) & (age <= 24)
    out["youth_afterschool"] = yes_no(in_6_14, "youth_afterschool", rate(y["afterschool"]))
    for name, often_key, sometimes_key in (
        ("youth_study_pressure", "study_pressure_often", "study_pressure_sometimes"),
        ("youth_conflict", "conflict_often", "conflict_sometimes"),
    ):
        often = rate(y[often_key])
        probs = np.column_stack([often, np.full(len(age), y[sometimes_key]), 1 - often - y[sometimes_key]])
        out[name] = np.where(in_10_24, pick(u(name), probs, ["often", "sometimes", "never"]), None)
    out["youth_internet"] = yes_no(in_10_24, "youth_internet", rate(y["internet"]))
    out["youth_work_integration"] = yes_no(
        in_10_24 & (age >= 16) & ~local, "youth_work_integration", y["work_integration"]
    )
    return out


def _flags(households, persons, hh, severe_member, strain, k6, conflict, parenting, hardship, has_child):
    """The household flags that drive service needs (``teams.<team>.drivers`` in simulation.yaml)."""
    n = len(households)
    age = persons["age"].to_numpy()
    youth = persons[YOUTH]
    disabled = persons["disabled"].to_numpy()
    dtype = persons["disabled_type"].to_numpy()
    iadl_dep = np.zeros(len(persons), bool)
    iadl_dep[age >= 60] = (persons.loc[age >= 60, list(IADL_LEVELS)].to_numpy() > 1).sum(axis=1) >= 3
    elderly_dep = persons["adl_dep"].to_numpy() | iadl_dep
    has_elderly = by_household(age >= 60, hh, n)
    wg = persons[WG].to_numpy()
    mobility = np.nan_to_num(wg[:, [WG_DOMAINS.index("walking"), WG_DOMAINS.index("selfcare")]]) >= 2
    return {
        "everyone": np.ones(n, bool),
        "has_elderly": has_elderly,
        "has_elderly_70": by_household(age >= 70, hh, n),
        "has_elderly_young_old": by_household((age >= 60) & (age < 80), hh, n),
        "elderly_dependent": by_household(elderly_dep, hh, n),
        "elderly_alone_or_dependent": by_household(elderly_dep, hh, n)
        | (has_elderly & (households["hh_size"].to_numpy() == 1)),
        "has_disabled": by_household(disabled & (age >= 5), hh, n),
        "has_mobility_difficulty": by_household(mobility.any(axis=1), hh, n),
        "has_disabled_or_mobility_difficulty": by_household(
            (disabled & (age >= 5)) | mobility.any(axis=1), hh, n
        ),
        "has_disabled_physical": by_household(np.isin(dtype, ["physical", "multiple"]), hh, n),
        "has_disabled_severe": by_household(severe_member, hh, n),
        "has_disabled_working_age": by_household(disabled & (age >= 16) & (age < 60), hh, n),
        "caregiver_strain": strain,
        "has_youth": by_household((age >= 6) & (age <= 24), hh, n),
        "has_youth_10_24": by_household((age >= 10) & (age <= 24), hh, n),
        "youth_afterschool": by_household(youth["youth_afterschool"].to_numpy() == "yes", hh, n),
        "youth_study_pressure": by_household(youth["youth_study_pressure"].to_numpy() == "often", hh, n),
        "youth_conflict_or_internet": by_household(
            (youth["youth_conflict"].to_numpy() == "often") | (youth["youth_internet"].to_numpy() == "yes"),
            hh,
            n,
        ),
        "youth_work_integration": by_household(youth["youth_work_integration"].to_numpy() == "yes", hh, n),
        "k6_distress": k6.sum(axis=1) >= 13,
        "parenting_stress": parenting == "yes",
        "family_conflict": conflict == "often",
        "hardship": hardship,
        "migrant_with_children": (households["origin"] == "migrant").to_numpy() & has_child,
    }


def household_answers(
    seed: int, households, persons, p, services, wave: dict | None = None
) -> dict[str, np.ndarray]:
    """Respondent, K6, family module and service answers per household, from its members (vectorised).

    ``persons`` carry ``hh`` (0..n-1, the household's row). ``services``: team -> its service lines
    (:func:`analysis.simulate.params.team_services`); ``wave``: rate overrides of a later wave
    (``receiving_given_need`` and ``aware_centre`` by team).
    """
    key = unit_keys(households["household_id"])

    def u(item, width=None):
        return keyed_uniform(seed, key, item, width)

    n = len(households)
    hh = persons["hh"].to_numpy()
    age = persons["age"].to_numpy()
    f, s = p["family"], p["services"]
    migrant = (households["origin"] == "migrant").to_numpy()
    group_effect = f["group_effect_sd"] * keyed_normal(
        seed, households["group_key"].to_numpy(), "group_effect"
    )

    adult = age >= 18
    first_adult = np.full(n, -1)
    idx_adult = np.flatnonzero(adult)
    first_adult[hh[idx_adult[::-1]]] = idx_adult[::-1]  # smallest index per household wins (head first)
    respondent = first_adult
    severe_member = (persons[WG].to_numpy() == 4).any(axis=1)
    dependent_member = persons["adl_dep"].to_numpy() | severe_member
    adl_score = persons[ADL].to_numpy().sum(axis=1)
    care = by_household(dependent_member, hh, n) | (u("care_false_positive") < f["care_false_positive"])
    heavy = by_household(np.nan_to_num(adl_score, nan=6) <= 3, hh, n)
    hours = np.round(
        f["caregiver_hours_median"]
        * np.exp(f["caregiver_hours_sigma"] * keyed_normal(seed, key, "hours"))
        * np.where(heavy, f["caregiver_hours_heavy_factor"], 1.0)
    ).clip(1, 168)
    strain = care & (u("strain") < np.minimum(f["strain_base"] + f["strain_per_hour"] * hours, 0.9))

    def logit_draw(item, prob):
        return u(item) < 1 / (1 + np.exp(-(np.log(prob / (1 - prob)) + group_effect)))

    hard_p = (
        np.where(migrant, f["hardship"]["nonlocal"], f["hardship"]["local"])
        + care * f["hardship"]["care_dependent_add"]
    )
    hardship = logit_draw("hardship", hard_p)
    often = np.where(migrant, f["conflict_often"]["nonlocal"], f["conflict_often"]["local"])
    conflict = pick(
        u("family_conflict"),
        np.column_stack([often, np.full(n, f["conflict_sometimes"]), 1 - often - f["conflict_sometimes"]]),
        ["often", "sometimes", "never"],
    )
    has_child = by_household(age < 18, hh, n)
    stress_p = np.where(migrant, f["parenting_stress"]["nonlocal"], f["parenting_stress"]["local"])
    parenting = np.where(has_child, np.where(u("parenting_stress") < stress_p, "yes", "no"), "na")
    latent = (
        f["k6_latent_mean"]
        + f["k6_hardship"] * hardship
        + f["k6_strain"] * strain
        + f["k6_migrant"] * migrant
        + keyed_normal(seed, key, "k6_latent")
    )
    k6 = np.clip(
        np.floor(
            latent[:, None]
            + f["k6_item_noise"] * keyed_normal(seed, key, "k6_items", 6)
            + f["k6_item_offset"]
        ),
        0,
        4,
    )

    out = {
        "resp_age": age[respondent],
        "resp_sex": persons["sex"].to_numpy()[respondent],
        "respondent_person": respondent,
        "care_dependent": np.where(care, "yes", "no"),
        "caregiver_hours": np.where(care, hours, np.nan),
        "caregiver_strain": np.where(care, np.where(strain, "yes", "no"), None),
        "family_conflict": conflict,
        "parenting_stress": parenting,
        "hardship": np.where(hardship, "yes", "no"),
    }
    for i, name in enumerate(K6):
        out[name] = k6[:, i]

    flags = _flags(
        households, persons, hh, severe_member, strain, k6, conflict, parenting, hardship, has_child
    )
    teams = list(services)
    unknown = {
        flag
        for team in teams
        for flag in [p["teams"][team]["eligible"], *p["teams"][team]["drivers"].values()]
    } - set(flags)
    if unknown:
        raise ConfigError(
            f"unknown service driver flags {sorted(unknown)}",
            file=str(PARAMS_FILE),
            column="teams",
            hint=f"known flags: {', '.join(sorted(flags))}",
        )
    wave = wave or {}
    need_count = np.zeros((n, len(teams)))
    for t, team in enumerate(teams):
        spec = p["teams"][team]
        receiving_rate = (wave.get("receiving_given_need") or {}).get(team, spec["receiving_given_need"])
        eligible = flags[spec["eligible"]]
        for service in services[team]:
            flagged = flags[spec["drivers"][service]] & eligible
            prob = np.where(
                flagged,
                spec["need_flagged"],
                np.where(eligible, spec["need_base"], spec["need_base"] * s["ineligible_factor"]),
            )
            item = f"{team}.{service}"
            need = u(f"need_{item}") < prob
            receiving = need & (u(f"receiving_{item}") < receiving_rate)
            would = np.where(
                need,
                u(f"would_use_{item}") < spec["would_use_given_need"],
                eligible & (u(f"would_use_{item}") < spec["would_use_without_need"]),
            )
            out[f"need_{item}"] = need.astype(np.int8)
            out[f"receiving_{item}"] = receiving.astype(np.int8)
            out[f"would_use_{item}"] = would.astype(np.int8)
            need_count[:, t] += need
        other = eligible & (u(f"other_{team}") < s["other_share"])
        out[f"need_{team}.other"] = other.astype(np.int8)
        out[f"receiving_{team}.other"] = (other & (u(f"receiving_{team}.other") < receiving_rate)).astype(
            np.int8
        )
        out[f"would_use_{team}.other"] = (
            other & (u(f"would_use_{team}.other") < spec["would_use_given_need"])
        ).astype(np.int8)
    noise = -np.log(-np.log(u("priorities", len(teams))))  # standard Gumbel
    ranked = np.argsort(-(need_count + s["priorities_noise"] * noise), axis=1)
    weights = np.asarray(s["priorities_count_weights"]) / sum(s["priorities_count_weights"])
    k = 1 + index_of(u("priorities_count"), weights)
    chosen = np.zeros_like(need_count, dtype=bool)
    np.put_along_axis(chosen, ranked, np.arange(len(teams))[None, :] < k[:, None], axis=1)
    for t, team in enumerate(teams):
        out[f"priorities.{team}"] = chosen[:, t].astype(np.int8)
    out["aware_centre"] = np.where(
        logit_draw("aware_centre", wave.get("aware_centre", s["aware_centre"])), "yes", "no"
    )
    return out
