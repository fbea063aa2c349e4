"""Coverage of the planted truth by 95% intervals from the replicate weights (used by the slow test).

One synthetic Leliu (``simulate.build_population(2012)``, the bundled survey's population) is sampled
``SAMPLES`` times with seeds 1, 2, …. Each sample is weighted as stage 02 does
(:func:`analysis.weights.build_weights`: design weights, nonresponse classes, raking, and replicate
weights that redo all of it in every replicate — ``REPLICATES`` per sample, half the pipeline's 200,
to keep the run short; the SE itself is then estimated with about 7% relative error, √(1/(2·99))).
Each team's headline shares are estimated with the full-sample weight and, in every replicate, with
the replicate weights; SE = √(Σ (θ_r − θ̄)² / (R − 1)). The interval is the one the results table
gives a share (R ``svyciprop(method="logit")``): logit p ± t·SE/(p(1 − p)), t with the sample's
design df (responding PSUs − strata); the plain estimate ± 1.96·SE is recorded beside it. Each headline also
records the mean replicate SE over the
SD of its estimates across samples (is the SE honest?) and the coverage of the estimates' own mean
(coverage without the estimator's bias).

Headlines per team: ``in_need_<team>`` (share of the target group), ``unmet_<team>`` (share of those
in need whose household receives none of the team's services) and ``need_any_<team>`` (share of
households stating a need for any of the team's services). Their 0/1 flags are the population's
own (:func:`analysis.indicators.add_need_flags` on the population, looked up by household and person
id: the sample's tables are population rows, and the flags computed on a sample are the same — the
slow test checks that on the first sample).

Beside them, the replicates the pipeline used before (Rao–Wu bootstrap of PSUs, first stage with
replacement, raking redone but not the nonresponse adjustment) on the same samples, for comparison.

Run ``.venv/bin/python tests/replicate_coverage.py`` to regenerate ``tests/results/replicate_coverage.json``
(about 3 minutes on 2 cores); the slow test writes ``build/results/replicate_coverage.json`` and
compares it with that copy.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analysis import indicators, simulate, validation, weights  # noqa: E402 -- after the sys.path setup
from analysis.survey import logit_interval  # noqa: E402 -- after the sys.path setup

POPULATION_SEED = 2012
SAMPLES = int(os.environ.get("REPLICATE_COVERAGE_SAMPLES", "1000"))
REPLICATES = 100
WORKERS = min(2, os.cpu_count() or 1)
Z = stats.norm.ppf(0.975)
RESULT = ROOT / "build" / "results" / "replicate_coverage.json"
COMMITTED = ROOT / "tests" / "results" / "replicate_coverage.json"


def headline_flags(
    households: pd.DataFrame, persons: pd.DataFrame, definitions: dict
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Numerator and denominator 0/1 columns of every headline share, per household and per person.

    Returns (household table indexed by household_id, person table indexed by person_id, headlines:
    team, variable, unit, column) where column ``c`` has ``num:c`` and ``den:c`` in its unit's table.
    """
    households, persons = indicators.add_need_flags(households, persons, definitions)
    parts = {"households": {}, "persons": {}}
    rows = []
    for team, spec in definitions["teams"].items():
        table = persons if spec["unit"] == "persons" else households
        in_need, unmet = table[f"in_need_{team}"], table[f"unmet_{team}"]
        stated = households[[c for c in households.columns if c.startswith(f"need_{team}.")]]
        shares = {
            (f"in_need_{team}", spec["unit"]): ((in_need == 1), in_need.notna()),
            (f"unmet_{team}", spec["unit"]): ((unmet == 1) & (in_need == 1), (in_need == 1)),
            (f"need_any_{team}", "households"): (
                (stated == 1).any(axis=1),
                pd.Series(True, index=households.index),
            ),
        }
        for (variable, unit), (num, den) in shares.items():
            parts[unit][f"num:{variable}"] = num.astype(float).to_numpy()
            parts[unit][f"den:{variable}"] = den.astype(float).to_numpy()
            rows.append((team, variable, unit, variable))
    hh = pd.DataFrame(parts["households"], index=households["household_id"].to_numpy())
    pp = pd.DataFrame(parts["persons"], index=persons["person_id"].to_numpy())
    return hh, pp, pd.DataFrame(rows, columns=["team", "variable", "unit", "column"])


def shares(
    flags: pd.DataFrame, columns: list[str], weight: np.ndarray, replicates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Full-sample shares Σ w·num / Σ w·den and their replicate values (replicates × shares)."""
    num = flags[[f"num:{c}" for c in columns]].to_numpy()
    den = flags[[f"den:{c}" for c in columns]].to_numpy()
    return (weight @ num) / (weight @ den), (replicates.T @ num) / (replicates.T @ den)


def replicate_se(thetas: np.ndarray) -> np.ndarray:
    """√(Σ (θ_r − θ̄)² / (R − 1)): the SE of the bootstraps here (R ``svrVar``, mse = FALSE)."""
    return thetas.std(axis=0, ddof=1)


_STATE: dict = {}


def _start(population, frame, definitions, household_flags, person_flags, headlines):
    _STATE.update(
        population=population,
        frame=frame,
        composition=simulate.elderly_households(population),
        definitions=definitions,
        households=household_flags,
        persons=person_flags,
        headlines=headlines,
    )


def one_sample(seed: int) -> pd.DataFrame:
    """Estimates and SEs of every headline for sample ``seed``: the weights' replicates and Rao–Wu's."""
    state = _STATE
    sample = simulate.draw_sample(state["population"], seed)
    built = weights.build_weights(
        sample.households,
        sample.persons,
        sample.design,
        state["frame"],
        composition=state["composition"],
        replicates=REPLICATES,
        seed=seed,
    )
    rao_wu = (
        weights.rake_persons(built.persons, state["frame"], composition=state["composition"])
        .replicate("bootstrap", replicates=REPLICATES, seed=seed)
        .replicate_weights()
    )
    rao_wu_households = weights.household_weights_from_persons(
        built.persons, pd.DataFrame(rao_wu), built.households
    )
    design_df = built.households[weights.PSU].nunique() - built.households[weights.STRATUM].nunique()
    out = []
    for unit, table, reps, old in (
        ("persons", built.persons, built.person_replicates, rao_wu),
        ("households", built.households, built.household_replicates, rao_wu_households.to_numpy()),
    ):
        heads = state["headlines"][state["headlines"]["unit"] == unit]
        key = "person_id" if unit == "persons" else "household_id"
        flags = state[unit].loc[table[key].to_numpy()]
        weight = table["weight"].to_numpy(dtype=float)
        estimate, thetas = shares(flags, heads["column"].tolist(), weight, reps.drop(columns=key).to_numpy())
        _, old_thetas = shares(flags, heads["column"].tolist(), weight, old)
        out.append(
            heads[["team", "variable"]].assign(
                sample=seed,
                estimate=estimate,
                se=replicate_se(thetas),
                df=design_df,
                se_rao_wu=replicate_se(old_thetas),
            )
        )
    return pd.concat(out, ignore_index=True)


def covers(low, high, value) -> np.ndarray:
    return (np.asarray(low) <= value) & (np.asarray(value) <= np.asarray(high))


def coverage(samples: int = SAMPLES, workers: int = WORKERS) -> dict:
    """Run every sample (``workers`` processes) and summarise coverage per headline."""
    started = time.perf_counter()
    population = simulate.build_population(POPULATION_SEED)
    frame = simulate.population_frame(population)
    definitions = indicators.load_needs()
    household_flags, person_flags, headlines = headline_flags(
        population.households, population.persons, definitions
    )
    truth = validation.truth_table(simulate.truth(population, definitions), definitions)
    truth = truth[(truth["group"] == "all") & (truth["analysis_type"] == "prop") & (truth["value"] == "1")]
    truth = headlines.merge(
        truth[["team", "variable", "truth"]], on=["team", "variable"], how="left", validate="one_to_one"
    )
    state = (population, frame, definitions, household_flags, person_flags, headlines)
    with ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start, initargs=state
    ) as pool:
        runs = pd.concat(pool.map(one_sample, range(1, samples + 1)), ignore_index=True)
    runs = runs.merge(truth[["team", "variable", "truth"]], on=["team", "variable"], validate="many_to_one")
    runs["mean_estimate"] = runs.groupby(["team", "variable"], sort=False)["estimate"].transform("mean")
    for suffix in ("", "_rao_wu"):
        low, high = logit_interval(runs["estimate"], runs[f"se{suffix}"], runs["df"])
        runs[f"covered{suffix}"] = covers(low, high, runs["truth"])
        runs[f"covered_mean{suffix}"] = covers(low, high, runs["mean_estimate"])
        runs[f"covered_wald_z{suffix}"] = covers(
            runs["estimate"] - Z * runs[f"se{suffix}"],
            runs["estimate"] + Z * runs[f"se{suffix}"],
            runs["truth"],
        )
    by = runs.groupby(["team", "variable"], sort=False)
    table = by.agg(
        truth=("truth", "first"),
        mean_estimate=("estimate", "mean"),
        sd_estimate=("estimate", "std"),
        mean_se=("se", "mean"),
        coverage=("covered", "mean"),
        coverage_of_mean=("covered_mean", "mean"),
        coverage_wald_z=("covered_wald_z", "mean"),
        mean_se_rao_wu=("se_rao_wu", "mean"),
        coverage_rao_wu=("covered_rao_wu", "mean"),
        coverage_wald_z_rao_wu=("covered_wald_z_rao_wu", "mean"),
    ).reset_index()
    table["bias_in_mc_se"] = (table["mean_estimate"] - table["truth"]) / (
        table["sd_estimate"] / np.sqrt(samples)
    )
    table["relative_bias"] = table["mean_estimate"] / table["truth"] - 1
    table["se_over_sd"] = table["mean_se"] / table["sd_estimate"]
    table["se_over_sd_rao_wu"] = table["mean_se_rao_wu"] / table["sd_estimate"]
    inside = table["coverage"].between(0.925, 0.975)
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "population_seed": POPULATION_SEED,
        "samples": samples,
        "replicates_per_sample": REPLICATES,
        "method": "Preston's multistage rescaled bootstrap of the issued sample; nonresponse adjustment, "
        "trimming (off) and raking redone in every replicate (analysis.weights.build_weights)",
        "comparison": "rao_wu: Rao-Wu bootstrap of PSUs (first stage with replacement), raking redone only",
        "interval": "logit p ± t × SE / (p(1 - p)), t with the sample's design df "
        "(responding PSUs - strata), "
        "as svyciprop; wald_z: estimate ± 1.96 × replicate SE",
        "band": [0.925, 0.975],
        "headlines_inside_band": int(inside.sum()),
        "headlines": len(table),
        "outside_band": table.loc[~inside, ["team", "variable", "coverage", "relative_bias"]]
        .round(4)
        .to_dict("records"),
        "by_headline": json.loads(table.round(6).to_json(orient="records")),
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(sum(u.ru_utime + u.ru_stime for u in (own, workers_cpu)), 1),
    }


def write(summary: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    result = coverage()
    write(result, RESULT)
    write(result, COMMITTED)
    print(json.dumps({k: v for k, v in result.items() if k != "by_headline"}, indent=2, ensure_ascii=False))
