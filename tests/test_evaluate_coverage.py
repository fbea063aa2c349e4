"""The change's 95% interval covers the planted change at its nominal rate, for revisited and for fresh
residential groups, over many simulated pairs of waves (slow).

One synthetic Leliu and its 2013 wave a year on (``simulate.waves.Panel``: ageing, births, deaths,
migrant turnover and the planted change in the centre's reach, ``simulation.yaml`` ``waves.2013``) are
sampled ``PAIRS`` times per design with seeds 1..PAIRS (``Panel.draw_pair``): the 2013 sample revisits
the 2012 sample's residential groups, or draws new ones. Each wave is weighted to its own year's frame,
both are stacked and compared as ``python -m analysis evaluate`` does
(:func:`analysis.evaluate.compare_waves`),
and every headline indicator's change is set beside the planted finite-population change.

Claims: for each indicator and each design the interval covers the planted change in 92.5–97.5% of pairs.
With 1,000 pairs a coverage estimate has a Monte Carlo SE of 0.7 points, so an interval of exactly 95%
lands in the band all but 0.03% of the time; with 200 (SE 1.5 points) about 1 in 10 such indicators would
fall outside by chance alone, which with 26 indicator-design pairs makes a pass a lottery. Hence 1,000;
the interval that treats the waves as independent (√(se₁² + se₂²), same t) is wider than the stacked one
for revisited groups (it ignores their positive covariance) and the same for fresh ones.

Results: ``build/results/wave_coverage.json``, compared with the committed
``tests/results/wave_coverage.json``
(same seeds, same numbers). ``python tests/test_evaluate_coverage.py`` rewrites the committed file;
``WAVE_PAIRS=n`` changes the number of pairs (the committed file holds the default).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import evaluate, indicators, simulate
from analysis.simulate.waves import Panel

ROOT = Path(__file__).resolve().parent.parent
POPULATION_SEED = 2012
PAIRS = int(os.environ.get("WAVE_PAIRS", "1000"))
WORKERS = int(os.environ.get("WAVE_WORKERS", "2"))
COMMITTED = ROOT / "tests" / "results" / "wave_coverage.json"
BUILT = ROOT / "build" / "results" / "wave_coverage.json"
BAND = (0.925, 0.975)
PANEL: Panel | None = None  # built once in the parent process, inherited by the workers (fork)


def wave(sample: simulate.Sample, year: int, pair: simulate.WavePair) -> evaluate.Wave:
    return evaluate.weigh_wave(
        year, sample.households, sample.persons, sample.design, pair.frames[year], pair.compositions[year]
    )


def one_seed(seed: int) -> pd.DataFrame:
    """Both designs' headline changes beside the planted change for one seed (the 2012 sample is the same
    draw in both, so it is weighted once)."""
    definitions = indicators.load_needs()
    specs = evaluate.indicator_specs(definitions)
    rows, first = [], None
    for psus in evaluate.PSU_MODES:
        pair = PANEL.draw_pair(seed, fresh_psus=psus == "fresh")
        y1, y2 = pair.years
        if first is None:
            first = wave(pair.first, y1, pair)
            first_table = evaluate.indicator_table(first.households, first.persons, definitions)
        second = wave(pair.second, y2, pair)
        assert evaluate.psu_mode(first, second) == psus
        tables = (first_table, evaluate.indicator_table(second.households, second.persons, definitions))
        estimates, gap = evaluate.compare_waves(first, second, tables, specs, psus, domains=())
        rows.append(
            evaluate.against_truth(estimates, pair.truth).assign(design=psus, seed=seed, weight_gap=gap)
        )
    return pd.concat(rows, ignore_index=True)


def run(pairs: int = PAIRS, workers: int = WORKERS, first_seed: int = 1) -> tuple[dict, float]:
    """Every seed's rows, summarised per design and indicator; and the seconds it took (wall clock)."""
    global PANEL
    started = time.perf_counter()
    PANEL = Panel(simulate.build_population(POPULATION_SEED))
    PANEL.truth  # noqa: B018  (computed once before the workers fork)
    seeds = range(first_seed, first_seed + pairs)
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(one_seed, seeds, chunksize=4)
    else:
        parts = [one_seed(seed) for seed in seeds]
    rows = pd.concat(parts, ignore_index=True)
    return summarise(rows, seeds), time.perf_counter() - started


def summarise(rows: pd.DataFrame, seeds: range) -> dict:
    """Coverage of the stacked and the independent-waves interval, mean SEs and the planted change, per
    design and indicator (rounded: the file is compared as written)."""
    designs = {}
    for design, part in rows.groupby("design", sort=False):
        table = part.groupby("indicator", sort=False).agg(
            planted=("planted", "first"),
            coverage=("covered", "mean"),
            coverage_independent=("covered_independent", "mean"),
            mean_se=("se", "mean"),
            mean_se_independent=("se_independent", "mean"),
            mean_estimate=("estimate", "mean"),
            sd_estimate=("estimate", "std"),
        )
        table["width_ratio"] = table["mean_se_independent"] / table["mean_se"]
        table["se_over_sd"] = table["mean_se"] / table["sd_estimate"]
        designs[design] = {
            "mean_coverage": round(float(table["coverage"].mean()), 4),
            "mean_coverage_independent": round(float(table["coverage_independent"].mean()), 4),
            "largest_weight_gap": float(f"{part['weight_gap'].max():.1e}"),
            "indicators": {
                name: {key: round(float(value), 6) for key, value in row.items()}
                for name, row in table.iterrows()
            },
        }
    return {
        "pairs": len(seeds),
        "population_seed": POPULATION_SEED,
        "seeds": f"{seeds[0]}..{seeds[-1]}",
        "level": evaluate.LEVEL,
        "band": list(BAND),
        "designs": designs,
    }


@pytest.mark.slow
@pytest.mark.study
@pytest.mark.xfail(
    strict=True,
    reason="known, issue 16 open: with fresh residential groups the change interval covered the planted "
    "change "
    "in 91.5% of 200 pairs for unmet_elderly and 92.0% for need_any_disability, below the 92.5% band "
    "(tests/results/wave_coverage.json); strict, so a pass is reported",
)
def test_the_change_interval_covers_the_planted_change_for_revisited_and_fresh_groups():
    result, seconds = run()
    BUILT.parent.mkdir(parents=True, exist_ok=True)
    BUILT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{PAIRS} pairs per design in {seconds:.0f} s on {WORKERS} workers")
    check_claims(result)
    if json.loads(COMMITTED.read_text(encoding="utf-8"))["pairs"] == PAIRS:
        assert result == json.loads(COMMITTED.read_text(encoding="utf-8"))


def check_claims(result: dict) -> None:
    """What the study shows: every indicator's change interval covers the planted change within the band,
    for revisited and fresh groups; ignoring the shared groups makes intervals wider."""
    for design, part in result["designs"].items():
        assert part["largest_weight_gap"] < 1e-6  # raking stops within 1e-10 × Σ weights
        for name, row in part["indicators"].items():
            assert BAND[0] <= row["coverage"] <= BAND[1], (design, name, row)
    revisited, fresh = (result["designs"][d]["indicators"] for d in ("revisited", "fresh"))
    ratios = np.array([row["width_ratio"] for row in revisited.values()])
    assert np.median(ratios) > 1 and ratios.max() > 1.2  # independent-waves intervals too wide when revisited
    assert (
        result["designs"]["revisited"]["mean_coverage_independent"]
        > result["designs"]["revisited"]["mean_coverage"]
    )
    np.testing.assert_allclose([row["width_ratio"] for row in fresh.values()], 1.0, rtol=1e-9)


if __name__ == "__main__":
    result, seconds = run()
    COMMITTED.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {COMMITTED}: {PAIRS} pairs per design in {seconds:.0f} s on {WORKERS} workers")
