"""The stages as functions: each writes its contract files whole, reruns alone from the files on disk, and the
headless run writes the same bytes as the notebook run; the estimates cover the planted truth; a person's
decisions and a fifth team reach every table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import config, pipeline, readme, validation
from analysis.errors import AnalysisError

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = {  # docs/contracts.md, stage outputs
    "clean": [
        "households.parquet",
        "households.csv",
        "persons.parquet",
        "persons.csv",
        "cleaning_log.csv",
        "deletion_log.csv",
        "data_dictionary.csv",
        "provenance.json",
    ],
    "weights": pipeline.WEIGHT_FILES,
    "demand": pipeline.DEMAND_FILES,
    "staffing": [
        "required_staff.csv",
        "allocation.csv",
        "replicate_allocations.csv",
        "sensitivity.csv",
        "conclusion.json",
    ],
    "brief": ["brief.html"],
}
COMPARED = {".csv", ".parquet", ".json", ".png", ".svg", ".html", ".txt"}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in COMPARED and "notebooks" not in p.parts
    }


@pytest.fixture(scope="module")
def headless(tmp_path_factory):
    """One headless run of every stage on the bundled survey (figures inside the output folder, drawn in the
    background worker as `python -m analysis run` draws them; the notebook run draws them in each stage)."""
    out = tmp_path_factory.mktemp("headless")
    done = pipeline.run_stages(out, pipeline.Inputs(), "zh", out / "figures", background_figures=True)
    return out, done


def test_every_stage_writes_its_contract_files_and_nothing_half_done(headless):
    out, done = headless
    for stage, names in CONTRACT.items():
        missing = [n for n in names if not (out / stage / n).is_file()]
        assert not missing, (stage, missing)
    assert not list(out.glob(".*")), "a temporary stage folder was left behind"
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == sorted(
        ["cleaning_funnel", "weight_distribution", *pipeline.DEMAND_FIGURES, *pipeline.STAFFING_FIGURES]
    )
    assert "SIMULATED DATA" in (out / "DATA_SOURCE.txt").read_text(encoding="utf-8")
    assert done["brief"].written["html"] == out / "brief" / "brief.html"


def test_headline_estimates_cover_the_planted_truth_at_99_percent(headless):
    """Moved from notebook 03: each team's in-need, unmet-need and stated-demand share and number, against the
    truth."""
    out, done = headless
    planted = validation.planted(pipeline.Inputs().data, out)
    assert planted is not None
    definitions = done["demand"].definitions
    check = validation.compare_with_truth(
        done["demand"].run.estimates, validation.read_truth(planted.truth, definitions), level=0.99
    )
    assert len(check) == 6 * len(definitions["teams"]) and check["truth"].notna().all()
    outside = check.loc[~check["inside_99"], ["team", "variable", "analysis_type", "estimate", "truth"]]
    assert outside.empty, outside.to_string()


def test_weighting_moves_the_headline_estimates_toward_the_truth(headless):
    out, done = headless
    definitions = done["demand"].definitions
    planted = validation.planted(pipeline.Inputs().data, out)
    steps = validation.weighting_against_truth(
        done["weights"].weighting_steps(definitions), validation.read_truth(planted.truth, definitions)
    )
    error = steps[["unweighted", "raked"]].sub(steps["truth"], axis=0).abs().sum()
    assert error["raked"] < error["unweighted"], steps.to_string()


def test_the_readme_states_the_results_of_a_fresh_run(headless):
    """Every result marked in README.md equals what `python -m analysis readme` computes from this run."""
    out, _ = headless
    _, changed, unknown = readme.fill(readme.README.read_text(encoding="utf-8"), readme.facts(out))
    assert not unknown, unknown
    assert not changed, f"README values differ from a fresh run (run `python -m analysis readme`): {changed}"


@pytest.mark.slow
def test_a_stage_reruns_alone_from_the_files_on_disk(headless):
    out, _ = headless
    before = {stage: _files(out / stage) for stage in ("demand", "staffing")}
    pipeline.run_stages(out, stages=("demand", "staffing"), fig_dir=out / "figures")
    assert {stage: _files(out / stage) for stage in ("demand", "staffing")} == before


def test_a_failed_stage_leaves_its_previous_outputs_whole(headless, tmp_path):
    out, _ = headless
    work = tmp_path / "out"
    for stage in ("clean", "weights", "demand"):
        shutil.copytree(out / stage, work / stage)
    persons = pd.read_parquet(work / "weights" / "persons.parquet")
    persons.assign(weight=persons["weight"] * 1.1).to_parquet(
        work / "weights" / "persons.parquet", index=False
    )
    before = _files(work / "demand")
    with pytest.raises(AnalysisError, match="not calibrated") as error:
        pipeline.demand(work, fig_dir=None)
    assert error.value.file == "weights/persons.parquet"
    assert _files(work / "demand") == before
    assert not list(work.glob(".demand-*"))


@pytest.mark.slow
def test_a_stage_whose_inputs_are_missing_names_the_file_and_the_stage_to_run(tmp_path):
    with pytest.raises(AnalysisError, match="run the weights stage first") as error:
        pipeline.demand(tmp_path, fig_dir=None)
    assert error.value.file.endswith("weights/households.parquet")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--no-notebooks",
            "--stage",
            "staffing",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: staffing stage: "), done.stderr
    assert "drivers.csv" in done.stderr


@pytest.mark.slow
def test_a_fifth_team_added_in_needs_yaml_reaches_the_tables_and_figures(headless, tmp_path):
    """A team whose questions the export carries (here: the family questions asked again for carers) is
    estimated, sized and drawn once needs.yaml and assumptions.yaml name it; no code changes."""
    out, _ = headless
    work = tmp_path / "out"
    shutil.copytree(out / "clean", work / "clean")
    shutil.copytree(out / "weights", work / "weights")
    households = pd.read_parquet(work / "weights" / "households.parquet")
    asked = {
        c.replace("_family", "_carers"): households[c]
        for c in households.columns
        if c.startswith(("need_family", "receiving_family", "would_use_family"))
    }
    households.assign(**asked).to_parquet(work / "weights" / "households.parquet", index=False)
    needs = yaml.safe_load(config.NEEDS_PATH.read_text(encoding="utf-8"))
    needs["teams"]["carers"] = {
        **needs["teams"]["family"],
        "indicators": ["caregiver_strain", "care_dependent"],
        "in_need_if_any": ["caregiver_strain"],
        "label": {"zh": "照顾者", "en": "Carers"},
        "colour": "#D55E00",
    }
    plan = yaml.safe_load(config.ASSUMPTIONS_PATH.read_text(encoding="utf-8"))
    plan["teams"]["carers"] = plan["teams"]["family"]
    for name, content in (("needs.yaml", needs), ("assumptions.yaml", plan)):
        (tmp_path / name).write_text(
            yaml.safe_dump(content, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )

    estimated = pipeline.demand(
        work,
        fig_dir=tmp_path / "fig",
        needs=tmp_path / "needs.yaml",
        assumptions=tmp_path / "assumptions.yaml",
    )
    results = pd.read_csv(work / "demand" / "results.csv", dtype={"value": str})
    carers = results[results["team"] == "carers"]
    assert {"in_need_carers", "unmet_carers", "need_carers", "would_use_carers"} <= set(carers["variable"])
    assert "carers" in set(pd.read_csv(work / "demand" / "services_ranked.csv")["team"])
    assert "carers" in set(pd.read_csv(work / "demand" / "drivers.csv")["team"])
    sized = pipeline.staffing(
        work, "en", tmp_path / "fig", needs=tmp_path / "needs.yaml", assumptions=tmp_path / "assumptions.yaml"
    )
    allocation = pd.read_csv(work / "staffing" / "allocation.csv")
    assert list(allocation["team"]) == list(needs["teams"])
    assert allocation["social_workers"].sum() == plan["plan"]["social_workers"]["value"]
    assert "Carers" in sized.sentences["en"] and "照顾者" in sized.sentences["zh"]
    assert set(estimated.figures) | set(sized.figures) == {
        *pipeline.DEMAND_FIGURES,
        *pipeline.STAFFING_FIGURES,
    }


@pytest.mark.slow
def test_an_export_without_the_simulators_provenance_gets_no_simulated_mark(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("leliu_needs.csv", "roster.csv"):
        shutil.copy(ROOT / "survey" / "raw" / "kobo" / name, raw / name)
    out = tmp_path / "out"
    done = pipeline.clean(out, pipeline.Inputs(data=raw / "leliu_needs.csv"), fig_dir=None)
    assert done.planted is None and not validation.is_simulated(out)
    assert not (out / "DATA_SOURCE.txt").exists()
    assert json.loads((out / "clean" / "provenance.json").read_text(encoding="utf-8"))["simulated"] is False


@pytest.mark.slow
def test_the_notebook_run_writes_the_same_bytes_as_the_headless_run(headless, tmp_path):
    out, _ = headless
    notebooks = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--notebooks",
            "--out",
            str(notebooks),
            "--figures",
            str(notebooks / "figures"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = _files(out), _files(notebooks)
    assert sorted(first) == sorted(second)
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, differ
    contract = {f"{stage}/{name}" for stage, names in CONTRACT.items() for name in names}
    assert contract <= set(first), contract - set(first)  # every table of docs/contracts.md was compared


@pytest.mark.slow
def test_an_edited_decisions_file_changes_the_demand_and_staffing_outputs(headless, tmp_path):
    """Issue 13: the person's decisions reach every stage of `python -m analysis run`."""
    out, _ = headless
    log = pd.read_csv(out / "clean" / "cleaning_log.csv", dtype=str, keep_default_na=False)
    households = pd.read_parquet(out / "clean" / "households.parquet")
    elderly_homes = households.loc[households["receiving_elderly"].fillna("").str.len() > 0, "uuid"].head(40)
    removed = pd.DataFrame(
        {
            "uuid": elderly_homes,
            "question": "",
            "old_value": "",
            "new_value": "",
            "issue": "reviewer: interviewer did not visit",
            "check_id": "reviewer",
            "change_type": "remove_survey",
        }
    )
    edited = tmp_path / "cleaning_decisions.csv"
    pd.concat([log, removed], ignore_index=True).to_csv(edited, index=False)
    run = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--no-notebooks",
            "--decisions",
            str(edited),
            "--out",
            str(run),
            "--figures",
            str(run / "figures"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_parquet(run / "clean" / "households.parquet")) == len(households) - len(elderly_homes)
    for name in ("demand/results.csv", "demand/drivers.csv", "staffing/required_staff.csv"):
        assert (run / name).read_bytes() != (out / name).read_bytes(), name
    provenance = json.loads((run / "clean" / "provenance.json").read_text(encoding="utf-8"))
    assert edited.name in provenance["decisions_sha256"]


@pytest.mark.slow
def test_two_notebook_kernels_started_at_once_in_one_folder_each_answer_their_own_client(
    tmp_path, monkeypatch
):
    """Two `run --notebooks` at once from the same folder (as CI's two test workers do) once shared
    jupyter_client's default socket paths, and each client waited for a kernel that answered the other."""
    from analysis.cli import local_kernel_manager

    monkeypatch.chdir(tmp_path)
    managers = [local_kernel_manager()(kernel_name="python3") for _ in range(2)]
    clients = []
    try:
        for manager in managers:
            manager.start_kernel()
        assert managers[0].ip != managers[1].ip
        for manager in managers:
            client = manager.client()
            client.start_channels()
            client.wait_for_ready(timeout=120)
            clients.append(client)
        for manager, client in zip(managers, clients):
            printed = []
            client.execute_interactive(
                "import os; print(os.getpid(), end='')",
                timeout=120,
                output_hook=lambda msg, printed=printed: printed.append(msg["content"].get("text", "")),
            )
            assert "".join(printed) == str(manager.provisioner.pid)
        assert not list(tmp_path.iterdir()), "no socket files in the working folder"
    finally:
        for client in clients:
            client.stop_channels()
        for manager in managers:
            manager.shutdown_kernel(now=True)
