"""What the synthetic population realises beside the public figures and estimates it is calibrated to.

:func:`calibration_table` computes each quantity of ``survey/README.md``'s calibration table from a
population; :func:`sample_summary` and :func:`fault_counts` the sample and fault figures quoted there.
``python -m analysis.simulate.calibration [--check] [README]`` rewrites (or checks) the generated blocks of
``survey/README.md`` from the bundled survey, so the numbers there are never typed by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.simulate.population import Population

ROOT = Path(__file__).resolve().parents[2]


def _pct(values) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in values) + " %"


def calibration_table(population: Population) -> pd.DataFrame:
    """quantity, target (with its docs/sources.md section) and realised value, as text."""
    persons, households = population.persons, population.households
    age = persons["age"].to_numpy()
    local = (persons["registration"] == "local").to_numpy()
    bands = [(0, 14), (15, 24), (25, 59), (60, 79), (80, 200)]
    shares = [np.mean((age >= lo) & (age <= hi)) for lo, hi in bands]
    reg = age[local]
    size = households["hh_size"].to_numpy()
    origin = households["origin"].to_numpy()
    old = persons[age >= 65]
    members = persons.groupby("household_id", observed=True)["relation"].agg(
        lambda r: set(r.astype(str)) <= {"head", "spouse"}
    )
    hh_size = households.set_index("household_id")["hh_size"]
    alone = old["household_id"].map(hh_size).to_numpy() == 1
    couple_only = old["household_id"].map(members).to_numpy(dtype=bool) & (
        old["household_id"].map(hh_size).to_numpy() == 2
    )
    five_plus = age >= 5
    wg = persons.loc[five_plus, [c for c in persons.columns if c.startswith("wg_")]].to_numpy() >= 3
    k6 = households[[c for c in households.columns if c.startswith("k6_")]].to_numpy().sum(axis=1) >= 13
    rows = [
        (
            "residents aged 0–14 / 15–24 / 25–59 / 60–79 / 80+",
            "12 / 20 / 59 / 7.8 / 1.2 % (§8)",
            _pct(shares),
        ),
        (
            "registered residents aged 0–14 / 60+ / 65+",
            "14 / 16 / 10.5 % (§1.2)",
            _pct([np.mean(reg <= 14), np.mean(reg >= 60), np.mean(reg >= 65)]),
        ),
        (
            "household size, registered / migrant / all",
            "3.0 / 2.2 / ~2.6 (§8); Shunde 2020: 2.44",
            " / ".join(
                f"{v:.2f}"
                for v in (size[origin == "local"].mean(), size[origin == "migrant"].mean(), size.mean())
            ),
        ),
        (
            "disabled (WG a lot or worse, or WG-missed psychosocial)",
            "~4.5–5.5 % of residents (§1.3)",
            (
                f"{100 * persons['disabled'].mean():.1f} % of residents; WG-SS identifies "
                f"{100 * wg.any(axis=1).mean():.1f} % of those 5+"
            ),
        ),
        (
            "65+ living alone / with spouse only",
            "12 / 22 % (§8, §1.4)",
            _pct([alone.mean(), couple_only.mean()]),
        ),
        ("respondents with K6 ≥ 13", "3–5 % (§8)", f"{100 * k6.mean():.1f} %"),
        (
            "interview duration",
            "log-normal, median 35 min (§8)",
            f"log-normal, median {population.params['interview']['duration_median_min']} min (parameter)",
        ),
    ]
    return pd.DataFrame(rows, columns=["quantity", "target (docs/sources.md)", "realised"])


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def sample_summary(population: Population, sample, submissions: int) -> str:
    """One paragraph: PSUs, households issued and responding, the nonresponse bias, submissions."""
    design, issued = sample.design, sample.issued
    responded = int(issued["responded"].sum())
    refusals = submissions - responded
    nonlocal_sample = (sample.persons["registration"] == "nonlocal").mean()
    nonlocal_all = (population.persons["registration"] == "nonlocal").mean()
    return (
        f"Seed {population.seed}: {len(population.groups)} residential groups in the population, "
        f"{len(design)} sampled; {len(issued):,} households issued, {responded:,} respond "
        f"({100 * responded / len(issued):.0f} %); non-local persons are {100 * nonlocal_sample:.0f} % "
        "of the "
        f"responding households' members against {100 * nonlocal_all:.0f} % of residents. The export holds "
        f"{submissions:,} submissions ({refusals:,} more than the responding households: refusals recorded "
        f"with `consent = no`, duplicates and test submissions)."
    )


def fault_table(faults: pd.DataFrame) -> str:
    """The fault kinds with what was done and how many the manifest lists."""
    from analysis.simulate.faults import FAULTS

    counts = faults["kind"].value_counts()
    table = pd.DataFrame(
        {
            "kind": [f"`{k}`" for k in FAULTS],
            "what was done": list(FAULTS.values()),
            "count": [int(counts.get(k, 0)) for k in FAULTS],
        }
    )
    return _markdown(table) + f"\n\n{len(faults):,} faults in all."


def truth_table(truth: pd.DataFrame, teams: list[str]) -> str:
    """Per team (in ``teams`` order): stated demand (need_any, households) and indicator-based need (in_need,
    the team's unit)."""
    overall = truth[truth["group"] == "all"].set_index(["team", "variable"])
    rows = []
    for team in teams:
        need_any, in_need = overall.loc[(team, f"need_any_{team}")], overall.loc[(team, f"in_need_{team}")]
        rows.append(
            {
                "team": team,
                "stated demand `need_any` (share of households)": f"{100 * need_any['proportion']:.1f} %",
                "in need `in_need` (share of the team's universe)": f"{100 * in_need['proportion']:.1f} %",
                "in need (number)": f"{int(in_need['count']):,} {in_need['unit']}",
            }
        )
    return _markdown(pd.DataFrame(rows))


def change_table(change: pd.DataFrame, teams: list[str]) -> str:
    """Per team, the planted value of each wave and the change of the evaluator's headline indicators."""
    overall = change[change["group"] == "all"].set_index(["team", "variable"])
    years = sorted(int(c.split("_")[1]) for c in change.columns if c.startswith("proportion_2"))
    rows = []
    for team, variable, label in [
        (t, f"{m}_{t}", m) for t in teams for m in ("reach", "unmet", "need_any")
    ] + [("centre", "aware_centre", "aware_centre")]:
        row = overall.loc[(team, variable)]
        rows.append(
            {
                "team": team,
                "indicator": f"`{label}`",
                **{str(y): f"{100 * row[f'proportion_{y}']:.1f} %" for y in years},
                "change (points)": f"{100 * row['proportion_change']:+.1f}",
            }
        )
    return _markdown(pd.DataFrame(rows))


def readme_blocks(population: Population, sample, survey_dir: str | Path) -> dict[str, str]:
    """The generated blocks of survey/README.md for the survey in ``survey_dir`` drawn from ``population``."""
    import json

    survey_dir = Path(survey_dir)
    provenance = json.loads((survey_dir / "raw" / "PROVENANCE.json").read_text(encoding="utf-8"))
    blocks = {
        "calibration": _markdown(calibration_table(population)),
        "sample": sample_summary(population, sample, provenance["submissions"]),
        "faults": fault_table(pd.read_csv(survey_dir / "simulation" / "faults.csv", dtype=str)),
        "truth": truth_table(
            pd.read_csv(survey_dir / "simulation" / "truth.csv", dtype={"group_value": str}),
            list(population.services),
        ),
    }
    for wave in sorted((survey_dir / "waves").glob("*/simulation/truth_change.csv")):
        blocks[f"change {wave.parts[-3]}"] = change_table(
            pd.read_csv(wave, dtype={"group_value": str}), list(population.services)
        )
    return blocks


def replace_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each ``<!-- generated: name -->`` … ``<!-- end generated -->`` block replaced."""
    for name, body in blocks.items():
        pattern = re.compile(
            rf"(<!-- generated: {re.escape(name)} -->\n).*?(\n<!-- end generated -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise ValueError(f"no generated block '{name}' in the README")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, compare) the generated blocks of survey/README.md."""
    import json

    from analysis.simulate.population import build_population
    from analysis.simulate.sample import draw_sample, sample_params

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("readme", nargs="?", default=str(ROOT / "survey" / "README.md"))
    ap.add_argument("--check", action="store_true", help="exit 1 when the README differs from the survey")
    args = ap.parse_args(argv)
    readme = Path(args.readme)
    provenance = json.loads((readme.parent / "raw" / "PROVENANCE.json").read_text(encoding="utf-8"))
    population = build_population(provenance["seed"], scale=provenance["scale"])
    population.params = sample_params(population.params, None, len(population.groups))
    sample = draw_sample(population, provenance["seed"] + 1)
    text = readme.read_text(encoding="utf-8")
    new = replace_blocks(text, readme_blocks(population, sample, readme.parent))
    if args.check:
        print("up to date" if new == text else f"{readme} differs from its survey: rerun without --check")
        return 0 if new == text else 1
    readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
