"""Documentation that cannot drift: every `docs/sources.md §N` the repository cites exists, nothing cites a
file
outside the repository, notebooks are thin (no def, class or assert) and state no number in their prose, and
the README's marked values are filled by `analysis.readme` (checked against a fresh run in test_pipeline)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

from analysis import readme

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "docs" / "sources.md"
CITATION = re.compile(r"sources\.md §(\d+(?:\.\d+)?)(?:–(\d+(?:\.\d+)?))?")
# Numbers a notebook's prose may hold: section signs, notebook numbers, interval levels and formula constants.
ALLOWED_NUMBERS = re.compile(
    r"§\d+(\.\d+)?(–\d+(\.\d+)?)?|\b0\d\b|\bstage 0\d\b|\d+% (confidence interval|interval|CI|range)"
    r"|\b1 /|\(1 −"
)


def _tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [ROOT / line for line in listed.stdout.splitlines() if (ROOT / line).is_file()]


def _text_files() -> list[Path]:
    suffixes = {".py", ".md", ".yaml", ".yml", ".csv", ".ipynb", ".html", ".R", ".toml", ".cfg", ".txt", ""}
    return [
        p
        for p in _tracked()
        if p.suffix in suffixes and p.stat().st_size < 2_000_000 and "fixtures" not in p.parts
    ]


def _sections() -> set[str]:
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", SOURCES.read_text(encoding="utf-8"), re.MULTILINE)
    return set(headings)


def test_every_cited_section_of_sources_md_exists():
    sections = _sections()
    assert {"1.1", "3.4", "6", "10.3"} <= sections
    missing = {}
    for path in _text_files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            for cited in filter(None, match.groups()):
                if cited not in sections:
                    missing.setdefault(cited, str(path.relative_to(ROOT)))
    assert not missing, missing


def test_nothing_cites_a_file_outside_the_repository():
    outside = re.compile(r"domain\.md|/work/shared|shared/design\.md|shared/style\.md")
    found = [
        str(p.relative_to(ROOT))
        for p in _text_files()
        if p != Path(__file__).resolve() and outside.search(p.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not found, found


def _cells(kind: str):
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == kind:
                yield notebook.name, "".join(cell["source"])


def test_notebooks_hold_no_definitions_or_assertions():
    found = []
    for name, source in _cells("code"):
        tree = ast.parse(
            "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        )
        kinds = {type(node).__name__ for node in ast.walk(tree)} & {
            "FunctionDef",
            "ClassDef",
            "Assert",
            "Lambda",
        }
        if kinds:
            found.append((name, sorted(kinds), source[:60]))
    assert not found, found


def test_notebook_prose_states_no_number():
    """Every number a reader sees in a notebook's markdown is printed by code; the prose may name sections,
    notebooks, interval levels and the constants of a formula."""
    found = [
        (name, re.findall(r"\S*\d\S*", ALLOWED_NUMBERS.sub("", text))) for name, text in _cells("markdown")
    ]
    found = [(name, numbers) for name, numbers in found if numbers]
    assert not found, found


def test_notebooks_show_their_stage_figures():
    shown = {name: source for name, source in _cells("code") if "figures.preview" in source}
    assert {
        "01_clean.ipynb",
        "02_weight.ipynb",
        "03_demand.ipynb",
        "04_team_sizing.ipynb",
        "05_leadership_brief.ipynb",
    } <= set(shown)


def test_readme_fill_replaces_only_marked_values_and_names_unknown_ones():
    text = "kept <!--kept-->1,000<!--/--> of <!--raw-->1,200<!--/--> (<!--other-->x<!--/-->)"
    new, changed, unknown = readme.fill(text, {"kept": "1,352", "raw": "1,200"})
    assert new == "kept <!--kept-->1,352<!--/--> of <!--raw-->1,200<!--/--> (<!--other-->x<!--/-->)"
    assert changed == {"kept": ("1,000", "1,352")} and unknown == ["other"]


def test_the_readme_marks_its_results():
    marked = dict(readme.MARKED.findall(readme.README.read_text(encoding="utf-8")))
    for name in (
        "submissions",
        "fault_rows",
        "response_rate",
        "elderly_share",
        "required_total",
        "coverage_mean",
        "report_seconds",
    ):
        assert name in marked, name
    assert marked["fault_rows"] != "262" and marked["response_rate"] != "55%"  # the two that had drifted


@pytest.mark.parametrize("name", ["needs.yaml", "assumptions.yaml", "simulation.yaml"])
def test_configuration_cites_only_sections_that_exist(name):
    text = (ROOT / "analysis" / name).read_text(encoding="utf-8")
    cited = {c for match in CITATION.finditer(text) for c in match.groups() if c}
    assert cited <= _sections()
