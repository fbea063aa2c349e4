"""Benchmark of lists of analyses (analysis.analyse): a 500-row list on 10,000 households, 6,760 crossed
groups.

    python benchmarks/bench_analyse.py [--out benchmarks/] [--repeats 3]

Two goals (issue 14), each timed as design construction + ``analyse.run`` (the median of ``--repeats``
runs in this process, after one untimed warm-up run):

- ``loa_500``: 10,000 households in 50 strata × 10 PSUs with weights; a list of 500 analyses (100 means,
  50 medians, 50 totals, 150 prop_select_one, 100 prop_select_multiple, 50 ratios of 30 numerators over
  10 denominators), each overall or by region, household type, or region × head's sex. Goal: under 2 s.
- ``groups_6760``: 50,000 rows (50 strata × 20 PSUs), the mean of one variable by three crossed
  variables of 26, 26 and 10 levels (6,760 groups). Goal: under 0.5 s.

The data are synthetic and deterministic (numpy seed). Writes results_analyse.json and .md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import analyse  # noqa: E402 -- sys.path must name the repository root first

GOALS = {"loa_500": 2.0, "groups_6760": 0.5}
SEED = 2012


def households(n: int = 10_000, seed: int = SEED) -> pd.DataFrame:
    """n households: 40 numeric answers, 30 select_one (3–8 answers), 15 select_multiple (6 options, text and
    0/1 columns), group variables region (5), hh_type (3), head_sex (2); some answers missing."""
    rng = np.random.default_rng(seed)
    psu = np.sort(rng.integers(0, 500, n))
    psu[:500] = np.arange(500)
    psu.sort()
    data = {
        "stratum": psu // 10,
        "psu": psu,
        "weight": rng.uniform(20, 200, n).round(3),
        "region": np.array(list("ABCDE"))[psu // 100],
        "hh_type": rng.choice(["nuclear", "extended", "single"], n),
        "head_sex": rng.choice(["female", "male"], n),
    }
    for k in range(40):
        x = rng.gamma(2.0, 10.0 + k, n).round(1)
        data[f"num{k}"] = np.where(rng.random(n) < 0.05, np.nan, x)
    for k in range(30):
        answers = np.array([f"a{j}" for j in range(3 + k % 6)])
        data[f"one{k}"] = np.where(rng.random(n) < 0.05, None, rng.choice(answers, n))
    for k in range(15):
        chosen = rng.random((n, 6)) < np.linspace(0.1, 0.6, 6)
        asked = rng.random(n) > 0.1
        data[f"multi{k}"] = np.where(
            asked, [" ".join(f"o{j}" for j in np.flatnonzero(row)) for row in chosen], None
        )
        for j in range(6):
            data[f"multi{k}/o{j}"] = np.where(asked, chosen[:, j].astype(float), np.nan)
    return pd.DataFrame(data)


def loa_500() -> pd.DataFrame:
    """500 analyses over the variables of :func:`households`, cycling through four groupings."""
    groups = ["", "region", "hh_type", "region, head_sex"]
    rows = []
    for kind, count, variable in [
        ("mean", 100, "num{}"),
        ("median", 50, "num{}"),
        ("total", 50, "num{}"),
        ("prop_select_one", 150, "one{}"),
        ("prop_select_multiple", 100, "multi{}"),
    ]:
        size = {"num{}": 40, "one{}": 30, "multi{}": 15}[variable]
        rows += [
            {
                "analysis_type": kind,
                "analysis_var": variable.format(k % size),
                "group_var": groups[k // size % 4],
            }
            for k in range(count)
        ]
    # ratios as lists have them: several numerators over one denominator (e.g. members of each kind / members)
    rows += [
        {
            "analysis_type": "ratio",
            "analysis_var_numerator": f"num{10 + k % 30}",
            "analysis_var_denominator": f"num{k // 5 % 10}",
            "group_var": groups[k % 4],
        }
        for k in range(50)
    ]
    return pd.DataFrame(rows).fillna("")


def crossed(n: int = 50_000, seed: int = SEED) -> pd.DataFrame:
    """n rows in 50 strata × 20 PSUs with three crossed grouping variables (26 × 26 × 10 = 6,760 groups)."""
    rng = np.random.default_rng([seed, n])
    psu = np.sort(rng.integers(0, 1000, n))
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return pd.DataFrame(
        {
            "stratum": psu // 20,
            "psu": psu,
            "weight": rng.uniform(20, 200, n),
            "first": rng.choice(letters, n),
            "second": rng.choice(letters, n),
            "digit": rng.integers(0, 10, n),
            "y": rng.normal(50, 10, n),
        }
    )


def timed(data: pd.DataFrame, loa: pd.DataFrame, repeats: int) -> tuple[dict, pd.DataFrame]:
    """Median wall-clock and CPU seconds of design + run over ``repeats`` runs (after a warm-up run)."""

    def once():
        design = analyse.design_from_columns(data, weights="weight", strata="stratum", ids=["psu"])
        return analyse.run(design, loa)

    out = once()  # warm-up: imports and first-call costs
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        once()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"seconds": float(np.median(wall)), "cpu_seconds": float(np.median(cpu)), "runs": wall}, out


def run(repeats: int = 3) -> dict:
    results = {}
    timing, out = timed(households(), loa_500(), repeats)
    results["loa_500"] = {
        **timing,
        "rows": 10_000,
        "analyses": 500,
        "result_lines": len(out),
        "goal_seconds": GOALS["loa_500"],
    }
    loa = pd.DataFrame(
        {"analysis_type": ["mean"], "analysis_var": ["y"], "group_var": ["first, second, digit"]}
    )
    timing, out = timed(crossed(), loa, repeats)
    results["groups_6760"] = {
        **timing,
        "rows": 50_000,
        "groups": int(out["n"].gt(0).sum()),
        "goal_seconds": GOALS["groups_6760"],
    }
    for case in results.values():
        case["met"] = case["seconds"] <= case["goal_seconds"]
    return results


def markdown(results: dict) -> str:
    lines = ["| case | median time | CPU | runs | goal | met |", "|---|---|---|---|---|---|"]
    labels = {
        "loa_500": "500-row list on 10,000 households",
        "groups_6760": "mean in 6,760 crossed groups of 50,000 rows",
    }
    for name, case in results.items():
        runs = ", ".join(f"{t:.2f}" for t in case["runs"])
        lines.append(
            f"| {labels[name]} | {case['seconds']:.2f} s | {case['cpu_seconds']:.2f} s | {runs} | "
            f"< {case['goal_seconds']} s | "
            f"{'yes' if case['met'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for results_analyse.json/.md")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    results = run(args.repeats)
    text = markdown(results) + (
        f"\nLoad average (1 min) at start: {load:.1f} on {os.cpu_count()} logical cores; "
        "wall clock includes waiting for a CPU, CPU seconds do not.\n"
    )
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results_analyse.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "results_analyse.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
