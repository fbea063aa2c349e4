"""Model-based 村居 estimates beat the direct ones and their intervals cover the planted truth (slow).

One synthetic Leliu (``simulate.build_population``) is sampled ``SAMPLES`` times with independent seeds.
Each sample is weighted as stage 02 does and each team's headline prevalence is estimated directly by
村居 and for all Leliu as stage 03 does; :func:`analysis.sae.fit_cunju` then gives the model-based 村居
estimates from those direct estimates and the population's own frame. Against the finite-population
truth of every 村居:

- the root mean squared error over samples, averaged over 村居 and teams, is at least 30% lower for
  the published 村居 estimates (model, or direct where the model does not fit) than for the direct ones
  (a 村居 without respondents in a team's target group has no direct estimate: ``direct_missing``
  counts them, the direct RMSE is over the samples that have one, the model's over all);
- estimate ± 1.96·√MSE covers the truth in 90–97% of 村居 × samples where the model is used.

The summary goes to ``build/results/sae_coverage.json``; it must equal the committed
``tests/results/sae_coverage.json`` (all seeds are fixed). After a deliberate change, regenerate the
committed copy with ``.venv/bin/python tests/test_sae_coverage.py``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import demand, indicators, sae, simulate, weights

POPULATION_SEED = 2012
SAMPLES = int(os.environ.get("SAE_COVERAGE_SAMPLES", "200"))
WORKERS = min(2, os.cpu_count() or 1)  # samples are independent: two processes halve the wall time
ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "tests" / "results" / "sae_coverage.json"
FRESH = ROOT / "build" / "results" / "sae_coverage.json"
Z = 1.959963984540054


def direct_estimates(
    population: simulate.Population, frame: pd.DataFrame, definitions: dict, seed: int
) -> pd.DataFrame:
    """Stage 03's estimates of each team's headline prevalence, all Leliu and by 村居, for one sample."""
    sample = simulate.draw_sample(population, seed)
    composition = simulate.elderly_households(population)
    built = weights.build_weights(
        sample.households, sample.persons, sample.design, frame, composition=composition, replicates=0
    )
    table = demand.estimation_table(built.households, built.persons, definitions)
    specs = demand.variable_specs(table, definitions)
    specs = specs[specs["variable"] == "in_need_" + specs["team"]]
    table = demand.add_derived_columns(table, specs, definitions)
    return demand.estimate(
        weights.rake_persons(table, frame, composition=composition),
        table,
        specs,
        breakdowns={"indicators": ["cunju"], "services": []},
    )


_WORLD: dict = {}


def _setup() -> None:
    """The population, its frame and the need definitions, once per process."""
    population = simulate.build_population(POPULATION_SEED)
    _WORLD.update(
        population=population,
        frame=simulate.population_frame(population),
        definitions=indicators.load_needs(),
    )


def _sample_areas(seed: int) -> pd.DataFrame:
    """The per-村居 table of :func:`analysis.sae.fit_cunju` for sample ``seed``."""
    population, frame, definitions = _WORLD["population"], _WORLD["frame"], _WORLD["definitions"]
    estimates = direct_estimates(population, frame, definitions, seed)
    fit = sae.fit_cunju(estimates, frame, definitions, cunju_table=population.cunju)
    return fit.areas.assign(sample=seed)


def run(samples: int = SAMPLES, workers: int = WORKERS) -> dict:
    """Simulate ``samples`` surveys, fit the 村居 models, and summarise error and coverage against truth."""
    _setup()
    truth = simulate.truth(_WORLD["population"], _WORLD["definitions"])
    truth = truth[(truth["group"] == "cunju") & (truth["variable"] == "in_need_" + truth["team"])]
    truth = truth.rename(columns={"group_value": "cunju", "proportion": "truth"})[["team", "cunju", "truth"]]
    seeds = range(1, samples + 1)
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_setup) as pool:
            runs = list(pool.map(_sample_areas, seeds, chunksize=10))
    else:
        runs = [_sample_areas(seed) for seed in seeds]
    runs = pd.concat(runs, ignore_index=True).merge(truth, on=["team", "cunju"], validate="many_to_one")
    fh = runs["method"] == "fh"
    runs["covered"] = (runs["estimate"] - Z * runs["se"] <= runs["truth"]) & (
        runs["truth"] <= runs["estimate"] + Z * runs["se"]
    )
    runs["error_direct"] = runs["direct"] - runs["truth"]
    runs["error_model"] = runs["estimate"] - runs["truth"]
    per_area = runs.groupby(["team", "cunju"]).agg(
        rmse_direct=("error_direct", lambda e: float(np.sqrt(np.mean(e**2)))),
        rmse_model=("error_model", lambda e: float(np.sqrt(np.mean(e**2)))),
    )
    by_team = per_area.groupby("team").mean()
    by_team["coverage"] = runs[fh].groupby("team")["covered"].mean()
    by_team["model_share"] = fh.groupby(runs["team"]).mean()
    by_team["mean_se_model"] = runs[fh].groupby("team")["se"].mean()
    rmse_direct, rmse_model = per_area["rmse_direct"].mean(), per_area["rmse_model"].mean()
    summary = {
        "population_seed": POPULATION_SEED,
        "samples": samples,
        "model": "Fay-Herriot (REML) on asin(sqrt(p)), GVF psi = deff/(4n), covariates: "
        + ", ".join(sae.COVARIATES)
        + "; bias-corrected back-transform, parametric bootstrap MSE, "
        "ratio benchmarking to the all-Leliu direct estimate",
        "area_rows": len(runs),
        "direct_missing": int(runs["direct"].isna().sum()),
        "model_rows": int(fh.sum()),
        "fallback_rows": int((~fh).sum()),
        "mean_rmse_direct": rmse_direct,
        "mean_rmse_model": rmse_model,
        "rmse_reduction": 1 - rmse_model / rmse_direct,
        "coverage": float(runs.loc[fh, "covered"].mean()),
        "by_team": json.loads(by_team.reset_index().to_json(orient="records", double_precision=6)),
    }
    return json.loads(json.dumps(summary, default=float), parse_float=lambda x: round(float(x), 6))


def write(summary: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def check_claims(summary: dict) -> None:
    """What the study shows: model estimates cut the RMSE by 30% or more and cover the truth 90–97%."""
    assert summary["rmse_reduction"] >= 0.30, summary["rmse_reduction"]
    assert 0.90 <= summary["coverage"] <= 0.97, summary["coverage"]
    assert summary["model_rows"] >= 0.9 * summary["area_rows"]


@pytest.mark.slow
@pytest.mark.study
def test_model_estimates_beat_direct_and_cover_the_planted_truth():
    summary = run()
    write(summary, FRESH)
    check_claims(summary)
    if SAMPLES == 200:
        assert summary == json.loads(COMMITTED.read_text(encoding="utf-8"))


if __name__ == "__main__":
    write(run(), COMMITTED)
    print(f"wrote {COMMITTED.relative_to(ROOT)}")
