"""Answers of every person and household, drawn from their members with correlated needs.

Persons: WG-SS (disability rising with age in the 2006 national type mix), Katz ADL and Lawton IADL for
the old, youth items. Households: respondent, K6, caregiving, family module, and for each team's service
lines need / receiving / would use, driven by the household flags that ``simulation.yaml``
(``service_drivers``) names; priorities and awareness of the centre. All rates are in simulation.yaml.
"""

from __future__ import annotations

import numpy as np

from analysis.errors import ConfigError
from analysis.simulate.draws import by_household, draw_choice, draw_index
from analysis.simulate.params import ADL, IADL_LEVELS, K6, PARAMS_FILE, SERVICE_QUESTIONS, WG, YOUTH


def person_answers(rng, persons, p):
    """WG-SS, Katz ADL, Lawton IADL and youth answers for every person (codes as in the instrument)."""
    age = persons["age"].to_numpy()
    local = persons["local"].to_numpy()
    n = len(age)
    d = p["disability"]
    band = np.searchsorted(d["age_breaks"], age, side="right") - 1
    disabled = rng.random(n) < np.asarray(d["prevalence"])[band]
    types = list(d["type_mix"])
    kind = np.full(n, "", dtype=object)
    kind[disabled] = np.asarray(types)[draw_index(rng, np.asarray([d["type_mix"][t] for t in types]) /
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
    k = 1 + draw_index(rng, np.asarray(e["adl_items_dependent_weights"]) / sum(e["adl_items_dependent_weights"]), n)
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
        out[name] = np.where(in_10_24, draw_choice(rng, probs, ["often", "sometimes", "never"]), None)
    out["youth_internet"] = np.where(in_10_24, np.where(rng.random(n) < rate(y["internet"]), "yes", "no"), None)
    work = in_10_24 & (age >= 16) & ~local
    out["youth_work_integration"] = np.where(work, np.where(rng.random(n) < y["work_integration"], "yes", "no"), None)
    out["registration"] = reg
    return out


def household_answers(rng, households, persons, p, services):
    """Respondent, K6, family module and service answers per household, from its members (vectorised).

    ``services``: team -> its service lines (:func:`analysis.simulate.params.team_services`).
    """
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
    care = by_household(dependent_member, hh, n) | (rng.random(n) < f["care_false_positive"])
    heavy = by_household(np.nan_to_num(adl_score, nan=6) <= 3, hh, n)
    hours = np.round(f["caregiver_hours_median"] * np.exp(rng.normal(0, f["caregiver_hours_sigma"], n))
                     * np.where(heavy, f["caregiver_hours_heavy_factor"], 1.0)).clip(1, 168)
    strain = care & (rng.random(n) < np.minimum(f["strain_base"] + f["strain_per_hour"] * hours, 0.9))

    def logit_draw(prob):
        return rng.random(n) < 1 / (1 + np.exp(-(np.log(prob / (1 - prob)) + group_effect)))

    hard_p = np.where(migrant, f["hardship"]["nonlocal"], f["hardship"]["local"]) + care * f["hardship"][
        "care_dependent_add"]
    hardship = logit_draw(hard_p)
    often = np.where(migrant, f["conflict_often"]["nonlocal"], f["conflict_often"]["local"])
    conflict = draw_choice(rng, np.column_stack([often, np.full(n, f["conflict_sometimes"]),
                                             1 - often - f["conflict_sometimes"]]), ["often", "sometimes", "never"])
    has_child = by_household(age < 18, hh, n)
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
        "has_elderly": by_household(age >= 60, hh, n),
        "has_elderly_70": by_household(age >= 70, hh, n),
        "has_elderly_young_old": by_household((age >= 60) & (age < 80), hh, n),
        "elderly_dependent": by_household(elderly_dep, hh, n),
        "elderly_alone_or_dependent": by_household(elderly_dep, hh, n) | (
            by_household(age >= 60, hh, n) & (households["hh_size"].to_numpy() == 1)),
        "has_disabled": by_household(disabled & (age >= 5), hh, n),
        "has_disabled_physical": by_household(np.isin(dtype, ["physical", "multiple"]), hh, n),
        "has_disabled_severe": by_household(severe_member, hh, n),
        "has_disabled_working_age": by_household(disabled & (age >= 16) & (age < 60), hh, n),
        "caregiver_strain": strain,
        "has_youth": by_household((age >= 6) & (age <= 24), hh, n),
        "has_youth_10_24": by_household((age >= 10) & (age <= 24), hh, n),
        "youth_afterschool": by_household(youth["youth_afterschool"].to_numpy() == "yes", hh, n),
        "youth_study_pressure": by_household(youth["youth_study_pressure"].to_numpy() == "often", hh, n),
        "youth_conflict_or_internet": by_household((youth["youth_conflict"].to_numpy() == "often")
                                                    | (youth["youth_internet"].to_numpy() == "yes"), hh, n),
        "youth_work_integration": by_household(youth["youth_work_integration"].to_numpy() == "yes", hh, n),
        "k6_distress": k6.sum(axis=1) >= 13,
        "parenting_stress": parenting == "yes",
        "family_conflict": conflict == "often",
        "hardship": hardship,
        "migrant_with_children": migrant & has_child,
    }
    teams = list(services)
    unknown = {flag for team in teams for flag in p["service_drivers"][team].values()} - set(drivers)
    if unknown:
        raise ConfigError(f"unknown service driver flags {sorted(unknown)}", file=str(PARAMS_FILE),
                          column="service_drivers", hint=f"known flags: {', '.join(sorted(drivers))}")
    need_count = np.zeros((n, len(teams)))
    for t, team in enumerate(teams):
        spec = p["service_drivers"][team]
        eligible = drivers[spec["eligible"]]
        for service in services[team]:
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
    k = 1 + draw_index(rng, np.asarray(s["priorities_count_weights"]) / sum(s["priorities_count_weights"]), n)
    chosen = np.zeros_like(need_count, dtype=bool)
    np.put_along_axis(chosen, ranked, np.arange(len(teams))[None, :] < k[:, None], axis=1)
    for t, team in enumerate(teams):
        out[f"priorities.{team}"] = chosen[:, t].astype(np.int8)
    out["aware_centre"] = np.where(logit_draw(np.full(n, s["aware_centre"])), "yes", "no")
    return out
