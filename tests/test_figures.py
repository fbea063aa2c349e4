"""Figures: Chinese renders without missing glyphs, labels come from the labels file and the instrument,
suppressed cells never show a value, the simulated mark and footnote are on every figure, same bytes on
rerun."""

from __future__ import annotations

import copy
import io
import re
import string
import warnings
from pathlib import Path

import figures_fixtures as fx
import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from analysis import figures
from analysis.config import load_needs
from analysis.errors import AnalysisError, ConfigError

ROOT = Path(__file__).resolve().parent.parent
FORM_DIR = ROOT / "survey" / "instrument"


@pytest.fixture(scope="module")
def form():
    instrument = pytest.importorskip("analysis.instrument")
    return instrument.load_form(FORM_DIR)


@pytest.fixture(scope="module")
def note():
    c = fx.clean()
    return figures.data_note(c["households"], c["persons"], c["provenance"])


def _render_warnings(fig: Figure) -> list[str]:
    """Draw ``fig`` to PNG and return the missing-glyph warnings matplotlib emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png", dpi=50)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def _all_text(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def _leaf_labels(node, lang):
    """Every string in the labels file in ``lang``."""
    if isinstance(node, dict) and lang in node:
        yield node[lang]
    elif isinstance(node, dict):
        for child in node.values():
            yield from _leaf_labels(child, lang)


def test_a_chinese_title_renders_without_missing_glyphs():
    with figures.house_style():
        fig = Figure()
        fig.text(0.1, 0.5, "勒流街道家庭综合服务中心：长者、残疾人、儿童青少年、家庭")
    assert _render_warnings(fig) == []


def test_the_missing_glyph_check_can_fail():
    """Negative control: the same title in a Latin-only font triggers the warning the test above looks for."""
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        fig = Figure()
        fig.text(0.1, 0.5, "勒流街道")
    assert len(_render_warnings(fig)) == 4


def test_the_simplified_chinese_face_covers_every_label(form):
    """Every character of every zh label (labels file and instrument) is in the font figures use — the
    SC face of the collection, not the Japanese default face."""
    family = figures.register_cjk_font()
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    font = FT2Font(path, face_index=getattr(path, "face_index", 0))
    assert font.family_name == family
    text = "".join(_leaf_labels(yaml.safe_load(figures.LABELS_PATH.read_text(encoding="utf-8")), "zh"))
    text += "".join(form.choices["label_zh"]) + "".join(form.survey["label_zh"])
    chars = sorted(set(text) - set(string.whitespace))
    missing = [c for c in chars if font.get_char_index(ord(c)) == 0]
    assert missing == []
    assert len(chars) > 300  # the check saw the real label set


def test_every_label_has_both_languages_with_the_same_placeholders():
    tree = yaml.safe_load(figures.LABELS_PATH.read_text(encoding="utf-8"))

    def leaves(node, key=""):
        if isinstance(node, dict) and ("zh" in node or "en" in node):
            yield key, node
        elif isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, f"{key}.{k}".strip("."))

    found = list(leaves(tree))
    assert len(found) > 40
    for key, node in found:
        assert set(node) == {"zh", "en"}, key
        assert sorted(re.findall(r"{(\w+)", node["zh"])) == sorted(re.findall(r"{(\w+)", node["en"])), key


def test_service_and_cunju_labels_come_from_the_instrument(form, note):
    results = fx.results()
    en = figures.load_labels("en", form)
    fig = figures.top_services(results, en, note)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    table = form.choices.set_index(["list_name", "name"])["label_en"]
    top = results[(results["variable"] == "need_" + results["team"]) & (results["value"] != "other")]
    top = top.sort_values("estimate", ascending=False).head(10)
    expected = [table[(f"{t}_services", s)] for t, s in zip(top["team"], top["value"])]
    assert ticks == expected  # in rank order, largest at the top
    zh = figures.load_labels("zh", form)
    cunju = figures.demand_by_cunju(results, zh, note)
    rows = [t.get_text() for t in cunju.axes[0].get_yticklabels()]
    assert rows[0] == form.choices.set_index(["list_name", "name"]).loc[("cunju", "c01"), "label_zh"]


def test_english_figures_use_english_labels(form, note):
    fig = figures.demand_by_team(fx.results(), figures.load_labels("en", form), note)
    text = _all_text(fig)
    assert "Residents in need of each team's services" in text
    cjk = [t for t in text if re.search(r"[\u4e00-\u9fff]", t)]
    # Chinese remains only where it is meant to: the bilingual simulated mark and the word 村居 in the note
    assert all(t == "模拟数据 / simulated data" or "村居" in t for t in cjk), cjk


def test_suppressed_cells_never_show_a_value(form, note):
    """A cell flagged suppressed (with its estimate still present) and a cell under the respondent
    threshold but not flagged are both drawn as "not shown", never as a percentage."""
    results = fx.results()
    cells = (results["group"] == "cunju") & (results["team"] == "elderly")
    flagged = results.index[cells & ~results["suppressed"]][0]
    small = results.index[cells & ~results["suppressed"]][1]
    results.loc[flagged, ["estimate", "suppressed"]] = [0.777, True]
    results.loc[small, ["estimate", "n"]] = [0.666, 9]
    fig = figures.demand_by_cunju(results, figures.load_labels("zh", form), note, threshold=10)
    text = _all_text(fig)
    assert "78%" not in text and "67%" not in text
    hidden = (
        results.loc[results["group"] == "cunju", "suppressed"]
        | (results.loc[results["group"] == "cunju", "n"] < 10)
    ).sum()
    assert text.count("不公布") == hidden
    shown = results[(results["group"] == "cunju") & ~results["suppressed"] & (results["n"] >= 10)]
    cell_text = [t.get_text() for t in fig.axes[0].texts]
    assert sum(bool(re.fullmatch(r"\d+%", t)) for t in cell_text) == len(shown)


def test_every_figure_carries_footnote_and_simulated_mark(form, note):
    c = fx.clean()
    outputs = {"results": fx.results(), **fx.staffing(), **c}
    made = figures.make_figures(outputs, figures.load_labels("zh", form), note)
    assert len(made) == 7
    for name, fig in made.items():
        text = "\n".join(_all_text(fig))
        assert "模拟数据 / simulated data" in text, name
        assert "N = 1,480 户、4,211 人（未加权）" in text, name
        assert "2012-05-02 – 2012-06-10" in text, name  # fieldwork dates from the data, not the clock
        assert "加权至" in text, name
    real = figures.Note(households=10, persons=20, date="2012-05-02", simulated=False)
    fig = figures.demand_by_team(outputs["results"], figures.load_labels("zh", form), real)
    assert not any("模拟数据" in t for t in _all_text(fig))


@pytest.mark.slow
def test_figures_are_byte_identical_on_rerun(tmp_path, form, note):
    labels = figures.load_labels("zh", form)
    first = figures.save_figure(figures.unmet_need(fx.results(), labels, note), tmp_path / "a", "unmet")
    second = figures.save_figure(figures.unmet_need(fx.results(), labels, note), tmp_path / "b", "unmet")
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    png = first[0].read_bytes()
    assert b"Software" not in png and b"matplotlib" not in png
    from PIL import Image

    with Image.open(first[0]) as image:
        assert image.size == (round(13.33 * 300), round(7.5 * 300))


def test_team_names_colours_and_order_come_from_needs_yaml():
    needs = load_needs()
    labels = figures.load_labels("en")
    assert labels.teams == list(needs["teams"])
    assert [labels.colour(t) for t in labels.teams] == [spec["colour"] for spec in needs["teams"].values()]
    assert len({labels.colour(t) for t in labels.teams}) == len(labels.teams)


def test_a_fifth_team_added_in_needs_yaml_is_drawn_with_its_name_and_colour(form, note):
    needs = copy.deepcopy(load_needs())
    needs["teams"]["carers"] = {
        **needs["teams"]["family"],
        "label": {"zh": "照顾者", "en": "Carers"},
        "colour": "#D55E00",
    }
    results = fx.results()
    carers = results[results["team"] == "family"].assign(
        team="carers", variable=lambda t: t["variable"].str.replace("family", "carers")
    )
    half = ["estimate", "se", "ci_low", "ci_high"]
    results = pd.concat([results, carers.assign(**{c: carers[c] * 0.5 for c in half})], ignore_index=True)
    for lang, name in (("en", "Carers"), ("zh", "照顾者")):
        labels = figures.load_labels(lang, form, needs=needs)
        fig = figures.demand_by_team(results, labels, note)
        ax = fig.axes[0]
        assert any(name in tick.get_text() for tick in ax.get_yticklabels())
        colours = {matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches}
        assert colours == {spec["colour"].lower() for spec in needs["teams"].values()}
        heat = figures.demand_by_cunju(results, labels, note)
        assert name in [
            tick.get_text().split("\n")[0] for tick in heat.axes[0].get_xticklabels()
        ]  # + denominator


def test_staffing_figure_shows_recommendation_and_even_split(form, note):
    tables = fx.staffing()
    fig = figures.staffing_vs_even(
        tables["allocation"], tables["replicate_allocations"], figures.load_labels("en", form), note
    )
    workers = fig.axes[0]
    heights = [p.get_height() for p in workers.patches]
    assert heights == [4, 2, 3, 1]
    even = [line.get_ydata()[0] for line in workers.get_lines() if line.get_linestyle() == "--"]
    assert even == [2.5]


def test_a_missing_variable_names_what_is_there(form, note):
    results = fx.results()
    with pytest.raises(AnalysisError, match="variable 'needy'.*in_need_elderly"):
        figures.demand_by_team(results, figures.load_labels("zh", form), note, variable="needy")


def test_figure_data_note_takes_dates_from_the_data():
    c = fx.clean()
    households = c["households"].assign(today="2012-06-01")
    n = figures.data_note(households, c["persons"], {"simulated": False})
    assert (n.date, n.households, n.persons, n.simulated) == ("2012-06-01", 1480, 4211, False)


def test_a_suppressed_team_gets_no_bar_and_no_number(form, note):
    results = fx.results()
    row = results.index[(results["variable"] == "unmet_disability") & (results["group"] == "all")][0]
    results.loc[row, ["estimate", "n"]] = [0.919, 7]  # under the threshold, estimate still present
    fig = figures.unmet_need(results, figures.load_labels("zh", form), note, threshold=10)
    text = _all_text(fig)
    assert "92%" not in text and "不公布：样本少于10，或为防止由合计反推" in text
    assert len(fig.axes[0].patches) == 3


def test_figures_accept_results_after_disclosure_control(form, note):
    """disclosure.suppress_results blanks n and estimates as nullable floats; figures still hide them."""
    disclosure = pytest.importorskip("analysis.disclosure")
    results = fx.results().astype({"n": int})
    protected = disclosure.suppress_results(results, threshold=10)
    fig = figures.demand_by_cunju(protected, figures.load_labels("zh", form), note, threshold=10)
    shown = protected[(protected["group"] == "cunju") & ~protected["suppressed"]]
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert cells.count("不公布") == int(protected.loc[protected["group"] == "cunju", "suppressed"].sum())
    assert sum(bool(re.fullmatch(r"\d+%", t)) for t in cells) == len(shown)


@pytest.mark.slow
def test_committed_figures_are_up_to_date_with_the_code(tmp_path, form):
    """The figures committed in figures/ are what the current code draws from build/ (the bundled survey)."""
    build, committed = ROOT / "build", ROOT / "figures"
    if (
        not (build / "demand" / "results.csv").exists()
        or not (build / "staffing" / "allocation.csv").exists()
    ):
        pytest.skip("no stage outputs in build/ (run `make report` first); committed figures not checked")
    files = sorted(committed.glob("*.png")) + sorted(committed.glob("*.svg"))
    if not files:
        pytest.skip("no figures committed in figures/ yet")
    outputs = figures.read_outputs(build)
    note = figures.data_note(outputs["households"], outputs["persons"], outputs["provenance"])
    disclosure = pytest.importorskip("analysis.disclosure")
    staffing = pytest.importorskip("analysis.staffing")
    threshold = disclosure.thresholds(staffing.load_assumptions())["leadership"]
    labels = figures.load_labels("zh", form)
    figures.save_figures(figures.make_figures(outputs, labels, note, threshold), tmp_path)
    weighted = pd.read_parquet(build / "weights" / "persons.parquet")  # notebook 02's figure
    figures.save_figure(figures.weight_distribution(weighted, labels, note), tmp_path, "weight_distribution")
    # `make evaluate` (python -m analysis evaluate), not the main run, draws the annual-change figure
    files = [f for f in files if not f.name.startswith("annual_change.")]
    stale = [
        f.name
        for f in files
        if not (tmp_path / f.name).exists() or (tmp_path / f.name).read_bytes() != f.read_bytes()
    ]
    assert stale == [], "out of date with the code: rerun `make report` (or notebook 05) and commit figures/"


def test_without_the_font_package_a_system_cjk_font_is_used_or_a_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "noto_cjk_sans_otc", None)  # import now fails
    fake = [font_manager.FontEntry(fname="/usr/share/fonts/wqy-zenhei.ttc", name="WenQuanYi Zen Hei")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", fake)
    assert figures.register_cjk_font() == "WenQuanYi Zen Hei"
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    with pytest.raises(ConfigError, match="no Chinese"):
        figures.register_cjk_font()


def test_cleaning_funnel_accounts_for_every_raw_submission(form, note):
    c = fx.clean()
    fig = figures.cleaning_funnel(c["households"], c["deletion_log"], figures.load_labels("en", form), note)
    widths = [p.get_width() for p in fig.axes[0].patches]
    raw, steps, clean = widths[0], widths[1:-1], widths[-1]
    assert raw == len(c["households"]) + len(c["deletion_log"]) and clean == len(c["households"])
    assert raw - sum(steps) == clean and steps == [31, 22, 17, 4]  # each deletion once, by its first check
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][1] == "Duplicate uuid"


def test_imprecise_cunju_cells_are_marked_and_keyed(form, note):
    """Shown 村居 cells whose 95% CI is wider than the limit carry a "±"; suppressed cells never do."""
    results = fx.results()
    cells = results[
        (results["group"] == "cunju")
        & (results["variable"] == "in_need_" + results["team"])
        & (results["analysis_type"] == "prop")
    ]
    shown = ~cells["suppressed"] & (cells["n"] >= 10) & cells["estimate"].notna()
    width = cells["ci_high"] - cells["ci_low"]
    zh = figures.load_labels("zh", form)
    for limit in (0.10, 0.30):
        fig = figures.demand_by_cunju(results, zh, note, threshold=10, imprecise_width=limit)
        marks = [t.get_text() for t in fig.axes[0].texts].count("±")
        assert marks == int((shown & (width > limit)).sum())
        assert f"95%置信区间宽于{round(limit * 100)}个百分点，估计不精确" in _all_text(fig)
    assert (shown & (width > 0.10)).sum() > (
        shown & (width > 0.30)
    ).sum()  # the fixture tells the limits apart


def test_weight_distribution_draws_one_box_per_weighting_step_without_warnings(form, note):
    rng = np.random.default_rng(7)
    persons = pd.DataFrame(
        {
            "weight_base": rng.uniform(30, 50, 200),
            "weight_nr": rng.uniform(40, 130, 200),
            "weight": rng.uniform(20, 180, 200),
        }
    )
    labels = figures.load_labels("zh", form)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error"
        )  # the seaborn/matplotlib deprecation is filtered precisely, nothing else
        fig = figures.weight_distribution(persons, labels, note)
        texts = _all_text(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        labels("figures.weight_distribution.design"),
        labels("figures.weight_distribution.nonresponse"),
        labels("figures.weight_distribution.raked"),
    ]
    assert labels("mark.simulated") in texts
    low, high = ax.get_xlim()
    assert low <= persons.min().min() and high >= persons.max().max()
    with pytest.raises(AnalysisError, match="weight_nr"):
        figures.weight_distribution(persons.drop(columns="weight_nr"), labels, note)


DRAW_EVERY_FIGURE = """
import sys
from pathlib import Path
import pandas as pd
sys.path.insert(0, sys.argv[2])
import figures_fixtures as fx
from analysis import figures
c = fx.clean()
note = figures.data_note(c["households"], c["persons"], c["provenance"])
labels = figures.load_labels("zh")
made = figures.make_figures({"results": fx.results(), **fx.staffing(), **c}, labels, note)
table = Path(sys.argv[2]) / "fixtures" / "figures" / "annual_change_table.csv"
table = pd.read_csv(table, dtype={"wave": str})
made["annual_change"] = figures.annual_change(table, labels, note, figures.load_labels("en"))
figures.save_figures(made, Path(sys.argv[1]), formats=("svg",))
"""


@pytest.mark.slow
def test_svg_bytes_do_not_depend_on_the_python_hash_seed(tmp_path):
    """Every figure's SVG is the same whatever PYTHONHASHSEED a process starts with: the layout is pinned
    before saving. Unpinned, the constrained layout's last bits followed the seed and so did the SVG's
    clip-path ids (the annual-change table, the bundled 2012 and 2013 waves' Leliu-wide rows, differed
    under seed 2)."""
    import os
    import subprocess
    import sys

    drawn = {}
    for seed in ("1", "2", "3"):
        folder = tmp_path / seed
        subprocess.run(
            [sys.executable, "-c", DRAW_EVERY_FIGURE, str(folder), str(Path(__file__).parent)],
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=600,
        )
        drawn[seed] = {p.name: p.read_bytes() for p in sorted(folder.glob("*.svg"))}
    assert len(drawn["1"]) == 8
    assert drawn["1"] == drawn["2"] == drawn["3"]
