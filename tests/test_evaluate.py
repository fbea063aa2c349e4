"""The annual evaluation (analysis/evaluate.py): stacked waves, the change's variance, instrument changes,
suppression and the summary's rule that a change whose interval includes zero is not called real."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import evaluate, figures, indicators, simulate, weights
from analysis.errors import AnalysisError, DesignError
from analysis.simulate.waves import Panel

ROOT = Path(__file__).resolve().parent.parent
POPULATION_SEED = 2012


@pytest.fixture(scope="module")
def population():
    return simulate.build_population(POPULATION_SEED)


@pytest.fixture(scope="module")
def definitions():
    return indicators.load_needs()


def wave_of(year, sample, frame, **kw):
    return evaluate.weigh_wave(year, sample.households, sample.persons, sample.design, frame, **kw)


@pytest.fixture(scope="module")
def fresh(population):
    """Two independent samples of one population: new residential groups in the second."""
    frame = simulate.population_frame(population)
    return wave_of(2012, simulate.draw_sample(population, 1), frame), wave_of(
        2013, simulate.draw_sample(population, 2), frame
    )


@pytest.fixture(scope="module")
def revisited(population):
    """One sample's households split at random in two waves: the same residential groups in both."""
    frame = simulate.population_frame(population)
    sample = simulate.draw_sample(population, 3)
    half = np.random.default_rng(0).random(len(sample.households)) < 0.5
    design = sample.design.assign(households_issued=(sample.design["households_issued"] // 2))
    design = design.assign(p_hh=design["households_issued"] / design["psu_households"])
    waves = []
    for year, chosen in ((2012, half), (2013, ~half)):
        households = sample.households[chosen]
        persons = sample.persons[sample.persons["household_id"].isin(households["household_id"])]
        waves.append(evaluate.weigh_wave(year, households, persons, design, frame))
    return tuple(waves)


def stacked(first, second, definitions, psus):
    tables = tuple(evaluate.indicator_table(w.households, w.persons, definitions) for w in (first, second))
    table, margins = evaluate.stack_waves(first, second, tables, psus)
    return evaluate.stacked_design(table, margins)


def test_raking_the_stacked_waves_to_both_frames_gives_each_waves_own_weights(revisited, definitions):
    result = evaluate.evaluate(*revisited, definitions, domains=())
    assert result.psus == "revisited"
    assert result.weight_gap < 1e-8


def test_a_ratios_change_has_the_se_of_compare_on_the_same_design(revisited, definitions):
    """The linearised variable reproduces the core: for a person indicator (denominator 1) the change's SE is
    Design.compare's mean, and each wave's SE of a household ratio is Design.ratio's."""
    design = stacked(*revisited, definitions, "revisited")
    specs = evaluate.indicator_specs(definitions)
    ours = evaluate.estimate(design, specs, None, 2012, 2013).set_index(["indicator", "wave"])
    core = design.compare("num:reach_elderly", first=2012, second=2013, na_rm=True)
    assert ours.loc[("reach_elderly", "change"), "se"] == pytest.approx(core["se"].iloc[0], rel=1e-10)
    assert ours.loc[("reach_elderly", "change"), "estimate"] == pytest.approx(
        core["estimate"].iloc[0], rel=1e-10
    )
    ratio = design.ratio("num:need_any_family", "den:need_any_family", by="wave", na_rm=True).set_index(
        "wave"
    )
    for year in (2012, 2013):
        assert ours.loc[("need_any_family", str(year)), "se"] == pytest.approx(
            ratio.loc[year, "se"], rel=1e-10
        )
        assert ours.loc[("need_any_family", str(year)), "estimate"] == pytest.approx(
            ratio.loc[year, "estimate"], rel=1e-12
        )


@pytest.mark.slow
@pytest.mark.parametrize("design", ["revisited", "fresh"])
def test_each_waves_se_in_the_stack_is_its_own_designs(design, request, definitions):
    """Below the stacked PSU, each wave's households are their own certain stage with their own fpc, so a
    wave's
    estimate has the variance of its own two-stage design (raked to its own frame)."""
    first, second = request.getfixturevalue(design)
    both = stacked(first, second, definitions, design)
    for wave in (first, second):
        table = evaluate.indicator_table(wave.households, wave.persons, definitions)
        own = weights.rake_persons(table, wave.frame)
        expected = own.mean("num:unmet_youth", na_rm=True)["se"].iloc[0]
        got = both.mean("num:unmet_youth", by="wave", na_rm=True).set_index("wave").loc[wave.year, "se"]
        if design == "revisited" and set(first.persons["psu"]) != set(second.persons["psu"]):
            pytest.skip("a residential group has respondents in one half only")
        assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_fresh_groups_are_independent_samples_and_revisited_ones_covary(fresh, revisited, definitions):
    apart = evaluate.evaluate(*fresh, definitions, domains=())
    assert apart.psus == "fresh"  # two independent draws share some groups by chance: still fresh
    change = apart.estimates[apart.estimates["wave"] == evaluate.CHANGE]
    np.testing.assert_allclose(change["se"], change["se_independent"], rtol=1e-10)
    together = evaluate.evaluate(*revisited, definitions, domains=())
    change = together.estimates[together.estimates["wave"] == evaluate.CHANGE]
    assert not np.allclose(change["se"], change["se_independent"], rtol=1e-3)
    # the same residential groups in both halves: their shared make-up correlates the halves positively
    assert (change["se"] < change["se_independent"]).mean() > 0.5


def test_psu_mode_from_the_sample_designs(fresh, revisited):
    assert evaluate.psu_mode(*revisited) == "revisited"
    assert evaluate.psu_mode(*fresh) == "fresh"
    assert evaluate.psu_mode(*fresh, declared="revisited") == "revisited"
    assert evaluate.psu_mode(fresh[0], replace(fresh[1], psus="revisited")) == "revisited"
    disjoint = replace(
        fresh[1], sample_design=fresh[1].sample_design.assign(psu="new-" + fresh[1].sample_design["psu"])
    )
    with pytest.raises(DesignError, match="share no PSU"):
        evaluate.psu_mode(fresh[0], disjoint, declared="revisited")
    with pytest.raises(DesignError, match="unknown PSU mode"):
        evaluate.psu_mode(*fresh, declared="panel")


def test_a_question_asked_in_one_wave_only_leaves_its_indicators_out(fresh, definitions):
    first, second = fresh
    second = replace(
        second,
        households=second.households.drop(columns=["aware_centre"]),
        persons=second.persons.drop(columns=["youth_internet"]),
    )
    result = evaluate.evaluate(first, second, definitions, domains=())
    assert result.left_out == {
        "aware_centre": ["aware_centre"],
        "reach_youth": ["youth_internet"],
        "unmet_youth": ["youth_internet"],
    }
    notes = result.table[result.table["note"].fillna("").str.startswith("left out")]
    assert set(notes["indicator"]) == set(result.left_out)
    assert notes["estimate"].isna().all()
    compared = set(result.estimates["indicator"])
    assert "need_any_youth" in compared and not compared & set(result.left_out)
    assert "知晓中心 · 全体住户" in evaluate.summary(result, "zh", definitions)
    assert "Not compared" in evaluate.summary(result, "en", definitions)


def test_cells_with_few_respondents_are_suppressed(fresh, definitions):
    result = evaluate.evaluate(*fresh, definitions, threshold=10)
    table = result.table[result.table["note"].fillna("") == ""]
    small = table["suppressed"].astype(bool)
    assert small.any() and (~small).any()
    assert table.loc[small, ["estimate", "ci_low", "ci_high"]].isna().all().all()
    waves = table[table["wave"] != evaluate.CHANGE]
    assert (waves.loc[~waves["suppressed"].astype(bool), "n"] >= 10).all()
    shown = result.estimates.merge(table[["indicator", "group", "group_value", "wave", "suppressed"]])
    hidden_changes = shown[(shown["wave"] == evaluate.CHANGE) & shown["suppressed"].astype(bool)]
    assert (hidden_changes["n_least"] < 10).all()


def synthetic(changes: dict[str, tuple[float, float, float]], simulated=True) -> evaluate.Evaluation:
    """An evaluation table for the summary: indicator -> (change, ci_low, ci_high); levels 0.30 and 0.30 +
    change."""
    specs = evaluate.indicator_specs(indicators.load_needs())
    rows = []
    for spec in specs.itertuples():
        change, low, high = changes.get(spec.indicator, (0.01, -0.02, 0.04))
        base = {
            "team": spec.team,
            "indicator": spec.indicator,
            "measure": spec.measure,
            "group": "all",
            "group_value": "all",
            "note": "",
            "suppressed": False,
        }
        rows += [
            dict(base, wave="2012", estimate=0.30),
            dict(base, wave="2013", estimate=0.30 + change),
            dict(base, wave=evaluate.CHANGE, estimate=change, ci_low=low, ci_high=high),
        ]
    table = pd.DataFrame(rows).reindex(columns=evaluate.TABLE_COLUMNS)
    return evaluate.Evaluation(table, table, {}, (2012, 2013), "revisited", simulated, 0.0, (None, None))


RISE_OR_FALL = ("rose", "fell", "上升", "下降", "increase", "decrease")


def test_the_summary_never_calls_a_change_real_when_its_interval_includes_zero():
    # large estimates whose intervals still include zero, and one just excluding it on each side
    result = synthetic(
        {
            "reach_elderly": (0.15, -0.01, 0.31),
            "unmet_youth": (-0.12, -0.25, 0.001),
            "aware_centre": (0.2, 0.0, 0.4),
            "reach_family": (0.03, 0.001, 0.06),
            "need_any_disability": (-0.03, -0.06, -0.002),
        }
    )
    for lang in ("zh", "en"):
        text = evaluate.summary(result, lang)
        clauses = text.split("；" if lang == "zh" else "; ")
        for clause in clauses:
            for name in ("长者", "Elderly", "儿童青少年", "Children & youth", "全体住户", "All households"):
                if name in clause and (
                    "获得服务" in clause
                    or "Reach" in clause
                    or "未满足" in clause
                    or "Unmet" in clause
                    or "知晓" in clause
                    or "Awareness" in clause
                ):
                    said = clause.split(name)[0][-40:] + name + clause.split(name)[1][:60]
                    assert not any(word in said.split("，")[0] for word in RISE_OR_FALL), said
        assert ("+3.0" in text) and ("-3.0" in text)  # the two intervals that exclude zero are reported
    en = evaluate.summary(result, "en")
    assert "Reach rose for Family (30% → 33%, +3.0 points" in en
    assert "Stated demand fell for Disability (30% → 27%, -3.0 points" in en
    assert "Awareness of the centre showed no clear change for All households" in en
    quiet = evaluate.summary(synthetic({}), "en") + evaluate.summary(synthetic({}), "zh")
    assert not any(word in quiet for word in RISE_OR_FALL)
    assert "simulated data" in quiet and "模拟数据" in quiet
    assert "模拟数据" not in evaluate.summary(synthetic({}, simulated=False), "zh")


def test_the_figure_shows_both_waves_bilingual_with_the_simulated_mark(fresh, definitions):
    result = evaluate.evaluate(*fresh, definitions, domains=())
    result = replace(result, simulated=True)
    labels, english = figures.load_labels("zh"), figures.load_labels("en")
    note, extra = evaluate.figure_note(result, labels)
    fig = figures.annual_change(result.table, labels, note, english, extra_note=extra)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    joined = "\n".join(texts)
    assert "模拟数据 / simulated data" in joined
    assert "获得服务比例 Reach" in joined and "知晓中心 Awareness of the centre" in joined
    assert "长者\nElderly" in joined
    assert "2012年 1,4" in joined or "2012年" in joined
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    assert sum(len(ax.patches) for ax in axes) == 2 * 13  # two bars per indicator


@pytest.mark.slow
def test_the_command_line_names_a_missing_wave_folder_in_one_line(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "evaluate",
            "--waves",
            str(tmp_path / "nope"),
            str(tmp_path / "nope2"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "survey folder not found" in done.stderr


def test_two_waves_of_one_year_are_refused(fresh, definitions):
    with pytest.raises(AnalysisError, match="both waves are from 2012"):
        evaluate.evaluate(fresh[0], replace(fresh[1], year=2012), definitions)


@pytest.mark.slow
def test_each_wave_is_raked_to_its_own_years_frame(population, definitions):
    """The 2013 population is a year on (births, deaths, moves): its frame differs, and each wave's
    weights add up to its own year's residents, in every 村居."""
    pair = Panel(population).draw_pair(11)
    waves = [
        wave_of(year, sample, pair.frames[year])
        for year, sample in zip(pair.years, (pair.first, pair.second))
    ]
    design = stacked(*waves, definitions, "revisited")
    weighted = design.data.assign(w=np.asarray(design.weights)).groupby(["wave", "cunju"])["w"].sum()
    for year in pair.years:
        frame = pair.frames[year].groupby("cunju")["population"].sum()
        np.testing.assert_allclose(weighted.loc[year].reindex(frame.index), frame, rtol=1e-8)
    totals = {year: pair.frames[year]["population"].sum() for year in pair.years}
    assert totals[pair.years[0]] != totals[pair.years[1]]


@pytest.mark.slow
def test_the_main_job_leaves_the_evaluation_notebook_to_make_evaluate(tmp_path):
    """`python -m analysis run` (make report) runs one export's stages; notebook 06 needs two waves."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "06_annual_evaluation.ipynb", notebooks)
    data = tmp_path / "export.csv"
    data.write_text("x\n1\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--notebooks",
            str(notebooks),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "nothing to run" in done.stdout


@pytest.mark.slow
def test_the_command_on_the_bundled_waves_writes_the_same_bytes_twice(tmp_path):
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "analysis",
                "evaluate",
                "--waves",
                "survey",
                "survey/waves/2013",
                "--out",
                str(out),
                "--figures",
                str(out / "figures"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
            timeout=1800,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(
            {
                p.relative_to(out).as_posix(): p.read_bytes()
                for p in sorted(out.rglob("*"))
                if p.is_file() and p.suffix in (".csv", ".json", ".png", ".svg", ".txt")
            }
        )
    assert outputs[0] == outputs[1]
    names = set(outputs[0])
    assert {
        "evaluation.csv",
        "summary.json",
        "DATA_SOURCE.txt",
        "figures/annual_change.png",
        "waves/2012/clean/households.csv",
        "waves/2013/weights/diagnostics.csv",
    } <= names
    table = pd.read_csv(tmp_path / "a" / "evaluation.csv", dtype={"wave": str})
    assert set(table["wave"]) == {"2012", "2013", evaluate.CHANGE}
