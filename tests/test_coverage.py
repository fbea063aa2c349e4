"""Confidence intervals cover the planted truth at their nominal rate over repeated samples (slow).

One synthetic Leliu (``simulate.build_population``) is sampled ``SAMPLES`` times with independent
seeds (``simulate.draw_sample``: stratified two-stage design, nonresponse depending on registration,
household age structure). Each sample is weighted exactly as stage 02 does (design weights,
nonresponse classes, raking to the population's own frame and elderly-household margin) and every team
indicator's prevalence in
its target group is estimated as stage 03 does, with the raking-aware linearised SE and the logit
interval (R ``svyciprop``; the Wald interval's coverage is recorded beside it). The 95% interval
should cover the finite-population truth 92.5–97.5% of the time on average over indicators, and no
indicator below 90%. The same samples analysed unweighted (each respondent counts once, clustering
kept) show what ignoring the design does. Results go to ``build/results/coverage.json`` and must equal
the committed ``tests/results/coverage.json`` (seeds are fixed; ``make results`` regenerates it).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import demand, indicators, simulate, validation, weights
from analysis.survey import Design

POPULATION_SEED = 2012
SAMPLES = int(__import__("os").environ.get("COVERAGE_SAMPLES", "200"))


def estimates_for(
    sample: simulate.Sample, frame: pd.DataFrame, composition: pd.DataFrame, definitions: dict
) -> pd.DataFrame:
    """Weighted and unweighted prevalence of every team indicator (all of Leliu) for one sample."""
    built = weights.build_weights(
        sample.households, sample.persons, sample.design, frame, composition=composition, replicates=0
    )
    table = demand.estimation_table(built.households, built.persons, definitions)
    specs = demand.variable_specs(table, definitions)
    specs = specs[specs["value"] == "1"]
    table = demand.add_derived_columns(table, specs, definitions)
    overall = {"indicators": [], "services": []}
    weighted = demand.estimate(
        weights.rake_persons(table, frame, composition=composition), table, specs, breakdowns=overall
    )
    flat = Design(
        table.assign(unit_weight=1.0), weights="unit_weight", strata="cunju", ids=["psu"], lonely_psu="adjust"
    )
    unweighted = demand.estimate(flat, table, specs, breakdowns=overall)
    z = stats.norm.ppf(0.975)
    weighted = weighted.assign(
        wald_low=weighted["estimate"] - z * weighted["se"],
        wald_high=weighted["estimate"] + z * weighted["se"],
    )
    keep = ["team", "variable", "analysis_type", "estimate", "ci_low", "ci_high"]
    both = weighted[keep + ["wald_low", "wald_high"]].merge(
        unweighted[keep], on=["team", "variable", "analysis_type"], suffixes=("", "_unweighted")
    )
    return both[both["analysis_type"] == "prop"]


def check_claims(summary: dict) -> None:
    """What the study shows: mean coverage 92.5–97.5% over indicators, none below 90%."""
    table = pd.DataFrame(summary["by_indicator"])
    assert 0.925 <= summary["mean_coverage"] <= 0.975, summary["mean_coverage"]
    low = table.loc[table["coverage"] < 0.90, ["team", "variable", "coverage"]]
    assert low.empty, low.to_dict("records")
    assert np.isfinite(table["coverage_unweighted"]).all()


@pytest.mark.slow
@pytest.mark.study
@pytest.mark.results
def test_95_percent_intervals_cover_the_planted_truth(committed_result):
    population = simulate.build_population(POPULATION_SEED)
    frame = simulate.population_frame(population)
    composition = simulate.elderly_households(population)
    definitions = indicators.load_needs()
    truth = validation.truth_table(simulate.truth(population, definitions), definitions)
    truth = truth[(truth["group"] == "all") & (truth["analysis_type"] == "prop") & (truth["value"] == "1")]
    truth = truth[["team", "variable", "truth"]]

    runs = []
    for seed in range(1, SAMPLES + 1):
        sample = simulate.draw_sample(population, seed)
        runs.append(estimates_for(sample, frame, composition, definitions).assign(sample=seed))
    runs = pd.concat(runs, ignore_index=True).merge(truth, on=["team", "variable"], validate="many_to_one")
    runs["covered"] = (runs["ci_low"] <= runs["truth"]) & (runs["truth"] <= runs["ci_high"])
    runs["covered_wald"] = (runs["wald_low"] <= runs["truth"]) & (runs["truth"] <= runs["wald_high"])
    runs["covered_unweighted"] = (runs["ci_low_unweighted"] <= runs["truth"]) & (
        runs["truth"] <= runs["ci_high_unweighted"]
    )
    by_indicator = (
        runs.groupby(["team", "variable"], sort=False)
        .agg(
            truth=("truth", "first"),
            mean_estimate=("estimate", "mean"),
            mean_unweighted=("estimate_unweighted", "mean"),
            coverage=("covered", "mean"),
            coverage_wald=("covered_wald", "mean"),
            coverage_unweighted=("covered_unweighted", "mean"),
            mean_ci_width=("ci_high", "mean"),
            samples=("sample", "nunique"),
        )
        .reset_index()
    )
    by_indicator["mean_ci_width"] = (
        (runs["ci_high"] - runs["ci_low"])
        .groupby([runs["team"], runs["variable"]], sort=False)
        .mean()
        .to_numpy()
    )
    by_indicator["relative_bias"] = by_indicator["mean_estimate"] / by_indicator["truth"] - 1
    by_indicator["relative_bias_unweighted"] = by_indicator["mean_unweighted"] / by_indicator["truth"] - 1
    summary = {
        "population_seed": POPULATION_SEED,
        "samples": SAMPLES,
        "indicators": len(by_indicator),
        "mean_coverage": float(by_indicator["coverage"].mean()),
        "min_coverage": float(by_indicator["coverage"].min()),
        "interval": "logit (svyciprop), t with design df; coverage_wald: estimate ± 1.96 se",
        "mean_coverage_wald": float(by_indicator["coverage_wald"].mean()),
        "min_coverage_wald": float(by_indicator["coverage_wald"].min()),
        "mean_coverage_unweighted": float(by_indicator["coverage_unweighted"].mean()),
        "min_coverage_unweighted": float(by_indicator["coverage_unweighted"].min()),
        "by_indicator": json.loads(by_indicator.round(5).to_json(orient="records")),
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    check_claims(summary)
    if SAMPLES == 200:  # the committed file holds the default run
        committed_result("coverage.json", text)
