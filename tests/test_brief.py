"""The leadership brief: numbers computed from the tables, self-contained, same bytes on rerun, and —
in a real browser (headless Chromium) — it loads, shows its four figures, and its Chinese renders
(every character drawn as a distinct glyph, none as a missing-glyph box), on one printed page."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import figures_fixtures as fx
import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from analysis import brief, figures

ROOT = Path(__file__).resolve().parent.parent
NO_CHROMIUM = "headless Chromium not installed (Debian: apt-get install chromium); browser checks skipped"
needs_chromium = pytest.mark.skipif(brief.chromium() is None, reason=NO_CHROMIUM)
CELL = 40  # px per character cell in the glyph probe
COLUMNS = 40


@pytest.fixture(scope="module")
def form():
    instrument = pytest.importorskip("analysis.instrument")
    return instrument.load_form(ROOT / "survey" / "instrument")


@pytest.fixture(scope="module")
def outputs():
    return {"results": fx.results(), **fx.staffing(), **fx.clean()}


@pytest.fixture(scope="module")
def page(outputs, form):
    c = outputs
    note = figures.data_note(c["households"], c["persons"], c["provenance"])
    return brief.render_brief(outputs, form, note)


@pytest.fixture(scope="module")
def brief_file(page, tmp_path_factory):
    return brief.write_brief(page, tmp_path_factory.mktemp("brief"))


def test_the_three_numbers_and_the_sentence_come_from_the_tables(outputs):
    numbers = brief.key_numbers(outputs["results"], outputs["allocation"], outputs["replicate_allocations"])
    assert numbers["team"] == "youth" and numbers["estimate"] == 21500.0  # largest in_need_<team> total
    assert numbers["required"] == pytest.approx(outputs["allocation"]["required"].sum())
    assert numbers["planned"] == 10 and numbers["split"] == {
        "elderly": 4,
        "disability": 2,
        "youth": 3,
        "family": 1,
    }
    reps = outputs["replicate_allocations"]
    labels = (
        reps.sort_values(["replicate", "team"])
        .groupby("replicate")
        .apply(lambda r: dict(zip(r["team"], r["social_workers"])), include_groups=False)
    )
    assert numbers["share"] == pytest.approx(np.mean([d == numbers["split"] for d in labels]))
    changed = outputs["allocation"].assign(social_workers=[3, 3, 3, 1])
    again = brief.key_numbers(outputs["results"], changed, reps)
    assert again["split"]["elderly"] == 3 and again["share"] != numbers["share"]


def test_the_sentence_is_in_both_languages(page):
    assert "建议将 10 名专业社工分配为：长者 4、残疾人 2、儿童青少年 3、家庭 1" in page
    assert "Assign the 10 social workers as Elderly 4, Disability 2, Children &amp; youth 3, Family 1" in page


def test_the_brief_is_self_contained(page):
    assert page.count('src="data:image/png;base64,') == 4
    assert "data:font/otf;base64," in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    assert "url(http" not in page and "@import" not in page


def test_the_embedded_font_has_every_character_on_the_page(page):
    data = re.search(r"data:font/otf;base64,([A-Za-z0-9+/=]+)", page).group(1)
    font = TTFont(io.BytesIO(base64.b64decode(data)))
    cmap = font.getBestCmap()
    visible = {c for c in brief.visible_text(page) if not c.isspace()}
    assert {c for c in visible if re.match(r"[\u4e00-\u9fff]", c)}  # the page has Chinese
    assert sorted(c for c in visible if ord(c) not in cmap) == []
    assert font["name"].getDebugName(1) == "Noto Sans CJK SC"


def test_the_brief_is_byte_identical_on_rerun(page, outputs, form):
    note = figures.data_note(outputs["households"], outputs["persons"], outputs["provenance"])
    assert brief.render_brief(outputs, form, note) == page


def _probe(style: str, chars: list[str]) -> str:
    """A page drawing each character in its own fixed cell, in the brief's own CSS and font stack.

    Cell 0 holds U+E000 (a private-use code point no font here draws) in a font that does not exist: the
    browser's missing-glyph rendering, the reference a tofu character would match.
    """
    cells = "<div style=\"font-family: 'No Such Font'\">\ue000</div>" + "".join(
        f"<div>{html.escape(c)}</div>" for c in chars
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8">{style}<style>'
        f"body {{ margin: 0; max-width: none; }} .g {{ display: grid; "
        f"grid-template-columns: repeat({COLUMNS}, {CELL}px); grid-auto-rows: {CELL}px; font-size: 28px; "
        f"line-height: {CELL}px; text-align: center; color: black; background: white; }} "
        f'.g div {{ overflow: hidden; }}</style></head><body><div class="g">{cells}</div></body></html>'
    )


def _glyph_cells(png: Path, count: int) -> list[np.ndarray]:
    ink = np.asarray(Image.open(png).convert("L")) < 128
    return [
        ink[
            (i // COLUMNS) * CELL : (i // COLUMNS + 1) * CELL, (i % COLUMNS) * CELL : (i % COLUMNS + 1) * CELL
        ]
        for i in range(count)
    ]


def _render_probe(tmp_path: Path, name: str, style: str, chars: list[str]) -> list[np.ndarray]:
    probe = tmp_path / f"{name}.html"
    probe.write_text(_probe(style, chars), encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    rows = (len(chars) + 1) // COLUMNS + 1
    brief.run_chromium(
        [
            "--force-device-scale-factor=1",
            f"--screenshot={shot}",
            f"--window-size={COLUMNS * CELL},{rows * CELL + 40}",
            "--virtual-time-budget=5000",
            probe.as_uri(),
        ]
    )
    return _glyph_cells(shot, len(chars) + 1)


def _tofu(cells: list[np.ndarray]) -> dict:
    reference, glyphs = cells[0], cells[1:]
    keys = {g.tobytes() for g in glyphs}
    return {
        "distinct": len(keys) / len(glyphs),
        "blank": sum(not g.any() for g in glyphs),
        "as_missing": sum(np.array_equal(g, reference) for g in glyphs),
        "reference_ink": int(reference.sum()),
    }


@needs_chromium
def test_chinese_in_the_brief_renders_without_missing_glyph_boxes(page, tmp_path):
    """Every Chinese character of the brief, drawn by Chromium with the brief's CSS, is a distinct,
    non-empty glyph that differs from the browser's missing-glyph box."""
    style = re.search(r"<style>.*?</style>", page, re.DOTALL).group()
    chars = sorted({c for c in brief.visible_text(page) if re.match(r"[\u4e00-\u9fff]", c)})
    result = _tofu(_render_probe(tmp_path, "brief_font", style, chars))
    assert result["blank"] == 0 and result["as_missing"] == 0
    assert result["distinct"] > 0.97, result


@needs_chromium
def test_the_glyph_probe_detects_tofu_without_the_embedded_font(page, tmp_path):
    """Negative control: the same probe with the embedded font removed shows tofu on a machine with no
    Chinese system font (the situation the embedded font exists for)."""
    fonts = (
        subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False).stdout
        if shutil.which("fc-list")
        else ""
    )
    if fonts.strip():
        pytest.skip(
            "a system Chinese font is installed, so removing the embedded font cannot produce tofu here"
        )
    style = re.sub(
        r"@font-face \{.*?\}", "", re.search(r"<style>.*?</style>", page, re.DOTALL).group(), flags=re.DOTALL
    )
    chars = sorted({c for c in brief.visible_text(page) if re.match(r"[\u4e00-\u9fff]", c)})
    result = _tofu(_render_probe(tmp_path, "no_font", style, chars))
    assert result["distinct"] < 0.1 and result["as_missing"] > 0.9 * len(chars), result


@pytest.mark.slow
@needs_chromium
def test_the_brief_loads_in_a_browser_and_shows_its_four_figures(brief_file, tmp_path):
    """Chromium loads the page; every figure is decoded (natural size > 0) and the embedded font is used."""
    script = """<script>
window.addEventListener('load', async () => {
  await document.fonts.ready;
  const imgs = [...document.images].map(i => ({name: i.dataset.figure, ok: i.complete && i.naturalWidth > 0,
    width: i.naturalWidth, shown: i.getBoundingClientRect().width}));
  const faces = [...document.fonts].map(f => ({family: f.family, status: f.status}));
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify({imgs, faces, title: document.title});
  document.body.appendChild(pre);
});
</script>"""
    probe = tmp_path / "brief_probe.html"
    probe.write_text(
        brief_file.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8"
    )
    done = brief.run_chromium(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()])
    dom = done.stdout.decode("utf-8")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-500:]
    state = json.loads(html.unescape(found.group(1)))
    assert [i["name"] for i in state["imgs"]] == [
        "demand_by_team",
        "top_services",
        "unmet_need",
        "staffing_vs_even",
    ]
    assert all(i["ok"] and i["width"] > 1000 and i["shown"] > 200 for i in state["imgs"]), state["imgs"]
    assert {"family": '"Leliu Noto Sans SC"', "status": "loaded"} in state["faces"] or {
        "family": "Leliu Noto Sans SC",
        "status": "loaded",
    } in state["faces"], state["faces"]
    assert state["title"].startswith("勒流街道")
    shot = brief.screenshot(brief_file, tmp_path / "brief_screenshot.png", width=794, height=1123)
    ink = np.asarray(Image.open(shot).convert("L")) < 200
    assert ink.mean() > 0.05  # a rendered page, not a blank one; screenshot kept in tmp_path
    print(f"brief screenshot: {shot}")


@pytest.mark.slow
@needs_chromium
def test_the_pdf_is_one_page_and_byte_identical(brief_file, tmp_path):
    first = brief.print_pdf(brief_file, tmp_path / "a.pdf")
    second = brief.print_pdf(brief_file, tmp_path / "b.pdf")
    assert brief.page_count(first) == 1
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().startswith(b"%PDF")


def test_the_largest_need_compares_residents_with_residents(outputs):
    """Family need is counted in households; a large household count does not outrank resident counts."""
    results = outputs["results"].copy()
    results.loc[
        (results["variable"] == "in_need_family")
        & (results["group"] == "all")
        & (results["analysis_type"] == "total"),
        "estimate",
    ] = 99999.0
    numbers = brief.key_numbers(results, outputs["allocation"], outputs["replicate_allocations"])
    assert (numbers["team"], numbers["unit"]) == ("youth", "persons")
