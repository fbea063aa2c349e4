"""The sample: stratified two-stage selection (residential groups, then households), nonresponse, and
the fault-free clean tables of the responding households (docs/contracts.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.indicators import IADL_LEVELS
from analysis.simulate.params import (
    ADL,
    K6,
    SERVICE_QUESTIONS,
    WG,
    YOUTH,
    load_params,
    team_services,
)
from analysis.simulate.population import Population


@dataclass
class Sample:
    """A drawn sample: fault-free clean tables of the responding households and their members, the
    sample design (one row per sampled PSU, docs/contracts.md) and every issued household with its
    response outcome (``issued``: household_id, psu, responded)."""

    households: pd.DataFrame
    persons: pd.DataFrame
    design: pd.DataFrame
    issued: pd.DataFrame = field(repr=False)


HOUSING_OTHER = ["借住亲戚家", "工地临时住所", "自建铁皮房", "寺庙宿舍"]
COMMENTS = [
    "希望多办长者活动",
    "希望中心晚上也开放",
    "服务很好，继续努力",
    "希望增加暑期托管",
    "希望有更多亲子活动",
    "不太了解中心",
    "希望多宣传",
    "希望简化申请手续",
]


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
            pick = np.r_[np.flatnonzero(certain), order[np.searchsorted(cum, points, side="right")]].astype(
                int
            )
        chosen.append(
            frame.iloc[np.sort(pick)].assign(
                stratum_psus=len(frame), sampled_psus=n_h, p_psu=prob[np.sort(pick)]
            )
        )
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


def clean_tables(
    households: pd.DataFrame,
    persons: pd.DataFrame,
    rng,
    params: dict | None = None,
    services: dict[str, list[str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Population rows -> fault-free clean tables (docs/contracts.md): bare field names, choice names as
    codes, select_multiple as the space-separated column plus ``<name>.<option>`` 0/1 columns, no PII.
    Free-text answers (``housing_other``, ``need_<team>_other``, ``comments``) are drawn with ``rng``.
    ``params``: the simulation parameters (default ``analysis/simulation.yaml``); ``services``: team ->
    service lines (default: the teams of ``analysis/needs.yaml``)."""
    params = load_params() if params is None else params
    services = team_services(params) if services is None else services
    other_texts = {team: params["teams"][team]["other_texts"] for team in services}
    comment_share = params["services"]["comment_share"]
    teams = list(services)
    n = len(households)
    h = {"household_id": households["household_id"].to_numpy(), "consent": np.full(n, "yes")}
    for name in ("cunju", "psu", "resp_age", "resp_sex", "hh_registration", "housing"):
        h[name] = (
            households[name].astype(str).to_numpy() if name != "resp_age" else households[name].to_numpy()
        )
    other_housing = h["housing"] == "other"
    h["housing_other"] = np.where(
        other_housing, np.asarray(HOUSING_OTHER)[rng.integers(0, len(HOUSING_OTHER), n)], None
    )
    h["hh_size"] = households["hh_size"].to_numpy()
    for name in K6:
        h[name] = _codes_as_text(households[name])
    h["care_dependent"] = households["care_dependent"].astype(str).to_numpy()
    h["caregiver_hours"] = pd.array(households["caregiver_hours"].round(), dtype="Int64")
    for name in ("caregiver_strain", "family_conflict", "parenting_stress", "hardship"):
        h[name] = households[name].astype(object).where(households[name].notna(), None).to_numpy()
    for team in teams:
        names = services[team] + ["other"]
        for question in SERVICE_QUESTIONS:
            var = f"{question}_{team}"
            cols = [f"{var}.{o}" for o in names]
            h[var] = _joined(households[cols], names)
            for c in cols:
                h[c] = households[c].to_numpy()
            if question == "need":
                texts = np.asarray(other_texts[team])[rng.integers(0, len(other_texts[team]), n)]
                h[f"need_{team}_other"] = np.where(
                    households[f"need_{team}.other"].to_numpy() == 1, texts, None
                )
    cols = [f"priorities.{t}" for t in teams]
    h["priorities"] = _joined(households[cols], teams)
    for c in cols:
        h[c] = households[c].to_numpy()
    h["aware_centre"] = households["aware_centre"].astype(str).to_numpy()
    h["comments"] = np.where(
        rng.random(n) < comment_share, np.asarray(COMMENTS)[rng.integers(0, len(COMMENTS), n)], None
    )
    hh_table = pd.DataFrame(h)

    q = {
        "person_id": persons["person_id"].to_numpy(),
        "household_id": persons["household_id"].to_numpy(),
        "age": persons["age"].to_numpy().astype(int),
    }
    for name in ("sex", "relation", "registration"):
        q[name] = persons[name].astype(str).to_numpy()
    for name in WG + ADL + list(IADL_LEVELS):
        q[name] = _codes_as_text(persons[name])
    for name in YOUTH:
        q[name] = persons[name].astype(object).where(persons[name].notna(), None).to_numpy()
    return hh_table, pd.DataFrame(q)


def draw_sample(population: Population, seed: int, psus: pd.DataFrame | None = None) -> Sample:
    """Stratified two-stage sample of ``population`` with nonresponse.

    Strata = 村居; stage 1: residential groups, PPS systematic by household count (``sample.psus`` in
    total, allocated proportional to households, min 2 per stratum) or SRS; stage 2: SRS of
    ``households_issued_per_psu`` households in each sampled group. A household responds with logistic
    propensity lower for migrant/mixed and young-headed households and higher with an elderly member
    (simulation.yaml ``sample``), so unweighted estimates are biased. Returns clean tables of the
    responding households, the design table and the issued households.

    ``psus``: the design table of an earlier wave to revisit its residential groups (stage 1 is not
    redrawn: their first-stage probabilities ``p_psu`` stay those of the earlier selection; stage 2 draws
    fresh households from each group as it is now).
    """
    p = population.params["sample"]
    rng = np.random.default_rng(seed)
    if psus is None:
        allocation = _allocate(population.groups, p["psus"])
        psus = _select_psus(rng, population.groups, allocation, p["psu_selection"])
    else:
        sizes = population.groups.set_index("psu")["households"]
        psus = psus[["cunju", "psu", "stratum_psus", "sampled_psus", "p_psu"]].assign(
            psu_households=lambda d: d["psu"].map(sizes).fillna(0).astype(int)
        )
    hh = population.households
    in_psu = hh["psu"].isin(psus["psu"]).to_numpy()
    frame = hh.loc[
        in_psu, ["household_id", "cunju", "psu", "hh_registration", "head_age", "has_elderly"]
    ].copy()
    frame["psu"] = frame["psu"].astype(str)
    frame["_key"] = rng.random(len(frame))
    take = psus.set_index("psu")["psu_households"].clip(upper=p["households_issued_per_psu"])
    frame["_rank"] = frame.groupby("psu")["_key"].rank(method="first")
    issued = frame[frame["_rank"] <= frame["psu"].map(take)].drop(columns=["_key", "_rank"])
    eta = (
        p["response_intercept"]
        + p["response_migrant"] * (issued["hh_registration"] == "nonlocal")
        + p["response_mixed"] * (issued["hh_registration"] == "mixed")
        + p["response_elderly_member"] * issued["has_elderly"]
        + p["response_young_head"] * (issued["head_age"] < 30)
    )
    issued = issued.assign(responded=rng.random(len(issued)) < 1 / (1 + np.exp(-eta.to_numpy(dtype=float))))
    design = psus.assign(
        households_issued=psus["psu"].map(take).to_numpy().astype(int),
        p_hh=(psus["psu"].map(take) / psus["psu_households"]).to_numpy(),
    )
    design = design[
        [
            "cunju",
            "psu",
            "stratum_psus",
            "sampled_psus",
            "psu_households",
            "p_psu",
            "households_issued",
            "p_hh",
        ]
    ].reset_index(drop=True)
    respondents = issued.loc[issued["responded"], "household_id"]
    households = hh[hh["household_id"].isin(respondents)]
    persons = population.persons[population.persons["household_id"].isin(respondents)]
    hh_table, person_table = clean_tables(households, persons, rng, population.params, population.services)
    issued = (
        issued[["household_id", "cunju", "psu", "responded"]].astype({"cunju": str}).reset_index(drop=True)
    )
    return Sample(households=hh_table, persons=person_table, design=design, issued=issued)


def sample_params(params: dict, n_households: int | None, n_groups: int) -> dict:
    """Sample size override: enough PSUs and households per PSU for about ``n_households`` responses."""
    if n_households is None:
        return params
    s = dict(params["sample"])
    issued = n_households / s["expected_response_rate"]
    s["psus"] = int(
        np.clip(round(issued / s["households_issued_per_psu"]), 2 * params["population"]["n_cunju"], n_groups)
    )
    s["households_issued_per_psu"] = max(1, int(np.ceil(issued / s["psus"])))
    return {**params, "sample": s}
