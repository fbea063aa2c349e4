"""The README's numbers, filled in from the build outputs (``python -m analysis readme``).

Owns: which result each number of ``README.md`` is and how it is printed. In the README a result is written
between markers, ``<!--name-->1,352<!--/-->``: the markers do not show on GitHub, and
``python -m analysis readme`` rewrites every marked value from the outputs of a run of the bundled survey
(``build/`` by default), the committed coverage results (``tests/results/coverage.json``) and the committed
benchmark results (``benchmarks/results*.json``). ``--check`` only reports the values that differ; a test
runs that check on a fresh run, so no hand-typed result can drift from what the code produces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from analysis import config, figures, pipeline, validation
from analysis.errors import AnalysisError

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKED = re.compile(r"<!--(?P<name>[a-z0-9_]+)-->(?P<value>.*?)<!--/-->", re.DOTALL)


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ci(row: pd.Series, fmt) -> str:
    return f"{fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"


def cleaning_facts(out: Path, inputs: pipeline.Inputs) -> dict[str, str]:
    """Submissions, kept and deleted, deletion reasons, and (simulated data) the planted faults found."""
    provenance = json.loads((out / "clean" / "provenance.json").read_text(encoding="utf-8"))
    counts = provenance["counts"]
    deleted = figures.first_reasons(pd.read_csv(out / "clean" / "deletion_log.csv", dtype=str))
    facts = {
        "submissions": _n(counts["raw_households"]),
        "kept_households": _n(counts["clean_households"]),
        "kept_persons": _n(counts["clean_persons"]),
        "deleted": _n(counts["deleted_households"]),
        **{f"deleted_{reason}": _n(n) for reason, n in deleted.items()},
    }
    planted = validation.planted(inputs.data, out)
    if planted is None:
        return facts
    faults = pd.read_csv(planted.faults, dtype=str)
    log = pd.read_csv(out / "clean" / "cleaning_log.csv", dtype=str)
    households = pd.read_parquet(out / "clean" / "households.parquet", columns=["uuid"])
    raw = pd.concat([households["uuid"], pd.read_csv(out / "clean" / "deletion_log.csv", dtype=str)["uuid"]])
    result = SimpleNamespace(cleaning_log=log, raw=SimpleNamespace(households=raw.to_frame()))
    by_kind, summary = validation.fault_detection(result, faults)
    flagging = validation.false_positives_by_check(result, faults)
    return facts | {
        "fault_rows": _n(len(faults)),
        "fault_kinds": _n(faults["kind"].nunique()),
        "faults_found": _n(by_kind["found"].sum()),
        "fault_events": _n(by_kind["faults"].sum()),
        "kinds_all_found": _n((by_kind["rate"] == 1).sum()),
        "lowest_kind_rate": f"{by_kind['rate'].min():.0%}",
        "fault_free": _n(summary["fault_free_submissions"]),
        "fault_free_flagged": _n(summary["flagged"]),
        "false_positive_rate": f"{summary['false_positive_rate']:.1%}",
        "false_positive_checks": ", ".join(sorted(set(flagging["check_id"]))) or "none",
    }


def weighting_facts(out: Path, inputs: pipeline.Inputs) -> dict[str, str]:
    """Response, margins before and after raking, Kish deff, and the elderly share under each weighting."""
    from analysis import demand, weights

    households = pd.read_parquet(out / "weights" / "households.parquet")
    persons = pd.read_parquet(out / "weights" / "persons.parquet")
    classes = weights.nonresponse_classes(households, pd.read_csv(inputs.sample_design))
    diagnostics = pd.read_csv(out / "weights" / "diagnostics.csv")
    margin = diagnostics[diagnostics["section"] == "margin"].pivot_table(
        index=["variable", "category"], columns="stage", values="value", sort=False
    )
    gap_before = (margin["before"] / margin["frame"] - 1).abs()
    gap_after = (margin["after"] / margin["frame"] - 1).abs()
    kish = diagnostics.query("section == 'weights' and category == 'kish_deff' and stage == 'raked'")["value"]
    definitions = config.load_needs()
    table, _ = demand.prepare(households, persons, definitions)
    steps = demand.point_estimates(table, definitions, {"unweighted": None, "raked": "weight"}).set_index(
        "team"
    )
    facts = {
        "issued": _n(classes["issued"].sum()),
        "response_rate": f"{classes['responding'].sum() / classes['issued'].sum():.1%}",
        "gap_before": f"{gap_before.max():.0%}",
        "gap_before_cell": " ".join(gap_before.idxmax()[1].split("|")),
        "gap_after": f"{gap_after.max():.0e}".replace("e-0", "e-"),
        "kish_deff": f"{float(kish.iloc[0]):.2f}",
        "elderly_unweighted": f"{steps.loc['elderly', 'unweighted']:.3f}",
        "elderly_raked": f"{steps.loc['elderly', 'raked']:.3f}",
    }
    planted = validation.planted(inputs.data, out)
    if planted is not None:
        truth = validation.read_truth(planted.truth, definitions).query(
            "group == 'all' and analysis_type == 'prop' and value == '1' and variable == 'in_need_elderly'"
        )
        facts["elderly_truth"] = f"{float(truth['truth'].iloc[0]):.3f}"
    return facts


def demand_facts(out: Path, inputs: pipeline.Inputs) -> dict[str, str]:
    """Each team's headline share and number with CIs (and the truth), margins of error, next-wave sizes."""
    results = pd.read_csv(out / "demand" / "results.csv", dtype={"value": str, "group_value": str})
    head = results[(results["group"] == "all") & (results["variable"] == "in_need_" + results["team"])]
    precision = pd.read_csv(out / "demand" / "precision.csv").set_index("team")
    planted = validation.planted(inputs.data, out)
    truth = (
        None
        if planted is None
        else validation.read_truth(planted.truth, config.load_needs())
        .query("group == 'all' and analysis_type == 'prop' and value == '1'")
        .set_index("variable")["truth"]
    )
    facts = {}
    for row in head.itertuples():
        team, kind = row.team, row.analysis_type
        series = pd.Series(row._asdict())
        if kind == "prop":
            facts[f"{team}_share"] = _ci(series, lambda x: f"{x:.3f}")
            if truth is not None:
                facts[f"{team}_truth"] = f"{truth[row.variable]:.3f}"
        else:
            facts[f"{team}_number"] = _ci(series, _n)
    for team, row in precision.iterrows():
        facts[f"{team}_moe"] = f"±{row['moe'] * 100:.1f}"
        facts[f"{team}_deff"] = f"{row['deff']:.2f}"
        facts[f"{team}_next_wave"] = _n(row["households_required"])
    return facts


def staffing_facts(out: Path) -> dict[str, str]:
    """Required social workers with their replicate range, the split by each method and its stability,
    the other staff, the break-even and the sentence for leaders."""
    required = pd.read_csv(out / "staffing" / "required_staff.csv").set_index("team")
    allocation = pd.read_csv(out / "staffing" / "allocation.csv")
    replicates = pd.read_csv(out / "staffing" / "replicate_allocations.csv")
    sensitivity = pd.read_csv(out / "staffing" / "sensitivity.csv")
    sentences = json.loads((out / "staffing" / "conclusion.json").read_text(encoding="utf-8"))
    teams = list(allocation["team"])
    split = "/".join(str(n) for n in allocation["social_workers"])
    wide = replicates.pivot(index="replicate", columns="team", values="social_workers")[teams]
    agree = (wide.to_numpy() == allocation["social_workers"].to_numpy()).all(axis=1).mean()
    nearest = sensitivity.loc[sensitivity["nearest_change"].idxmin()]
    facts = {
        "required_total": f"{required.loc['total', 'required']:.1f}",
        "required_range": (
            f"{required.loc['total', 'required_p2_5']:.1f}–{required.loc['total', 'required_p97_5']:.1f}"
        ),
        "required_by_team": ", ".join(f"{t} {required.loc[t, 'required']:.1f}" for t in teams),
        "split": ", ".join(f"{t} {n}" for t, n in zip(teams, allocation["social_workers"])),
        "split_share": f"{agree:.0%}",
        "replicates": _n(wide.shape[0]),
        "other_staff_split": "/".join(str(n) for n in allocation["other_staff"]),
        "break_even": f"{nearest['nearest_change']:.0%}",
        "break_even_assumption": figures.assumption_label(nearest["assumption"], figures.load_labels("en")),
        "sentence_zh": sentences["zh"],
    }
    for column in [c for c in allocation.columns if c.startswith("social_workers_")]:
        facts[f"split_{column.removeprefix('social_workers_')}"] = "/".join(
            str(n) for n in allocation[column]
        )
    facts["split_methods"] = ", ".join(
        m for m in ("hamilton", "webster", "huntington_hill", "jefferson") if facts.get(f"split_{m}") == split
    )
    return facts


def committed_facts(root: Path = ROOT) -> dict[str, str]:
    """Results committed beside the code: CI coverage over repeated samples and the benchmarks."""
    coverage = json.loads((root / "tests" / "results" / "coverage.json").read_text(encoding="utf-8"))
    lowest = min(coverage["by_indicator"], key=lambda r: r["coverage"])
    facts = {
        "coverage_samples": _n(coverage["samples"]),
        "coverage_indicators": _n(coverage["indicators"]),
        "coverage_mean": f"{coverage['mean_coverage']:.1%}",
        "coverage_min": f"{coverage['min_coverage']:.1%}",
        "coverage_min_variable": lowest["variable"],
        "coverage_wald_mean": f"{coverage['mean_coverage_wald']:.1%}",
        "coverage_wald_min": f"{coverage['min_coverage_wald']:.1%}",
        "coverage_unweighted_mean": f"{coverage['mean_coverage_unweighted']:.1%}",
        "coverage_unweighted_min": f"{coverage['min_coverage_unweighted']:.0%}",
    }
    bench = json.loads((root / "benchmarks" / "results.json").read_text(encoding="utf-8"))
    goals = {g["goal"]: g for g in bench["goals"]}
    end_to_end = next(
        g for name, g in goals.items() if name.startswith("150,000 households end to end, time")
    )
    memory = next(
        g for name, g in goals.items() if name.startswith("150,000 households end to end, peak memory")
    )
    scaling = [g["measured"] for name, g in goals.items() if name.endswith("scaling exponent k")]
    report = next(g for name, g in goals.items() if name.startswith("warm report"))

    def verdict(goal: dict) -> str:
        return "met" if goal["met"] else "not met"

    facts |= {
        "report_verdict": verdict(report),
        "end_to_end_verdict": verdict(end_to_end),
        "end_to_end_gb_verdict": verdict(memory),
        "report_seconds": f"{bench['report']['seconds']:.0f}",
        "max_k": f"{max(scaling):.2f}",
        "end_to_end_seconds": f"{end_to_end['measured']:.0f}",
        "end_to_end_over": f"{end_to_end['ratio']:.2f}",
        "end_to_end_gb": f"{memory['measured']:.1f}",
    }
    core = json.loads((root / "benchmarks" / "results_core.json").read_text(encoding="utf-8"))
    largest = core["sizes"][max(core["sizes"], key=int)]
    for task, runs in largest.items():
        for tool, key in (("ours", "ours"), ("R survey", "r"), ("svy", "svy")):
            seconds = runs["tools"][tool]["median_s"]
            facts[f"core_{task}_{key}"] = f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"
    facts["core_bootstrap_ours_mb"] = _n(largest["bootstrap"]["tools"]["ours"]["peak_mb"])
    facts["core_bootstrap_r_gb"] = f"{largest['bootstrap']['tools']['R survey']['peak_mb'] / 1000:.1f}"
    return facts


def facts(out: str | Path, inputs: pipeline.Inputs | None = None, root: Path = ROOT) -> dict[str, str]:
    """Every value the README marks, by name, from a run of the bundled survey in ``out`` (``inputs``: the
    run's inputs, default the bundled survey's)."""
    out, inputs = Path(out), inputs or pipeline.Inputs()
    if not (out / "staffing" / "conclusion.json").exists():
        raise AnalysisError(
            "no complete run in the output folder",
            file=str(out),
            hint="run python -m analysis run (or --no-notebooks) first",
        )
    return (
        cleaning_facts(out, inputs)
        | weighting_facts(out, inputs)
        | demand_facts(out, inputs)
        | staffing_facts(out)
        | committed_facts(root)
    )


def fill(text: str, values: dict[str, str]) -> tuple[str, dict[str, tuple[str, str]], list[str]]:
    """``text`` with every marked value replaced; also the changed names (old, new) and unknown names."""
    changed, unknown = {}, []

    def replace(match: re.Match) -> str:
        name, old = match.group("name"), match.group("value")
        if name not in values:
            unknown.append(name)
            return match.group(0)
        if values[name] != old:
            changed[name] = (old, values[name])
        return f"<!--{name}-->{values[name]}<!--/-->"

    return MARKED.sub(replace, text), changed, unknown


def update(out: str | Path, readme: Path = README, check: bool = False) -> dict[str, tuple[str, str]]:
    """Rewrite ``readme``'s marked values from ``out`` (or, with ``check``, only report what differs)."""
    text = readme.read_text(encoding="utf-8")
    new, changed, unknown = fill(text, facts(out))
    if unknown:
        raise AnalysisError(
            f"README marks values this command does not know: {sorted(set(unknown))}",
            file=str(readme),
            hint="name a value analysis/readme.py computes",
        )
    if changed and not check:
        readme.write_text(new, encoding="utf-8")
    return changed
