"""Reliability as a statistics office checks it: nothing lost, nothing leaked, the same bytes every run.

- Properties (hypothesis) over ingest + cleaning: for small exports drawn from the bundled Kobo export with
  random faults injected, raw = clean + deleted (households and persons) and no personal value from the
  raw file survives in any output table or log.
- Privacy: every file the main job writes (CSV, Parquet read with pandas, JSON, HTML, SVG text, PNG bytes,
  executed notebooks) and the committed notebooks contain no name, phone, ID number or address of the
  raw export (the raw values are read from the raw Kobo CSVs, columns the form marks ``pii``).
- Reproducibility: two runs of ``python -m analysis run`` give identical bytes; a raw file changed after a
  run is reported by the next run; ``clean/provenance.json`` records the raw checksum and package versions.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import bad_inputs as bi
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.clean import Settings, clean_raw, clean_survey
from analysis.cli import raw_export_changes
from analysis.ingest import read_export, sha256
from analysis.instrument import load_form

ROOT = bi.ROOT
FORM = load_form(bi.FORM)
PII_FIELDS = set(FORM.survey.loc[FORM.survey["pii"], "name"])
HH_ALL, ROSTER_ALL = bi.bundled(200)
TEXT_SUFFIXES = {".csv", ".json", ".html", ".svg", ".ipynb", ".md", ".txt"}


# ----- personal values of the raw export ------------------------------------------------------------------


def pii_columns(table: pd.DataFrame) -> list[str]:
    """Columns whose bare name (after the group path) is a field the form marks pii = yes."""
    return [c for c in table.columns if re.split(r"[/.\-]", c)[-1] in PII_FIELDS]


def pii_values(*tables: pd.DataFrame) -> set[str]:
    """Personal values of at least two characters, except the placeholder a test submission carries as its
    name ("测试", matched by the cleaning's test pattern): it is a word, not a person, and the cleaning
    report names the "测试问卷" it removed."""
    values = set()
    for table in tables:
        cells = table[pii_columns(table)].astype(str).stack().str.strip()
        values |= set(cells[(cells.str.len() >= 2) & ~cells.str.contains(Settings().test_pattern)])
    return values


def raw_pii() -> set[str]:
    """Every name, phone, address and ID number in the bundled raw Kobo export."""
    main = pd.read_csv(bi.KOBO / bi.MAIN, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    roster = pd.read_csv(bi.KOBO / bi.ROSTER, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert pii_columns(main) and pii_columns(roster), "the raw export has no pii columns to look for"
    return pii_values(main, roster)


def leaks(text: str, secrets: set[str]) -> set[str]:
    """Personal values found in ``text``: digit/ID runs compared whole, Chinese text by every substring of a
    secret's length (a set look-up, fast on megabytes of output)."""
    found = set(re.findall(r"[0-9Xx]{11,18}", text)) & secrets
    lengths = {len(s) for s in secrets if not s.isascii()}
    for run in re.findall(r"[^\x00-\x7f]+[0-9]*[^\x00-\x7f]*", text):
        found |= {run[i : i + n] for n in lengths for i in range(len(run) - n + 1)} & secrets
    return found


def table_text(table: pd.DataFrame) -> str:
    """Column names and every non-numeric cell as text (numbers cannot hold a name, phone or ID number
    of 11+ digits without it showing as a 1e10-size value, which no table here holds)."""
    text = table.select_dtypes(exclude=["number", "bool"])
    return " ".join(map(str, table.columns)) + "\n" + text.to_csv(index=False)


def file_text(path: Path) -> str | None:
    """What a reader of the file can see, as text; None for formats that cannot be read as text here."""
    if path.suffix == ".parquet":
        return table_text(pd.read_parquet(path))
    if path.suffix in TEXT_SUFFIXES:
        return path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".png":  # text chunks (metadata) are latin-1; pixels cannot hold text
        return path.read_bytes().decode("latin-1")
    return None


def scan(folder: Path, secrets: set[str]) -> tuple[dict[str, set[str]], list[Path], list[Path]]:
    """(file -> leaked values, files scanned, files not scannable)."""
    found, scanned, skipped = {}, [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = file_text(path)
        if text is None:
            skipped.append(path)
            continue
        scanned.append(path)
        hit = leaks(text, secrets)
        if hit:
            found[str(path.relative_to(folder))] = hit
    return found, scanned, skipped


def test_leak_scanner_finds_planted_values(tmp_path):
    """The scanner can fail: personal values planted in a CSV, Parquet, SVG and notebook are all found."""
    secrets = raw_pii()
    name = next(s for s in sorted(secrets) if not s.isascii() and len(s) == 3)
    phone = next(s for s in sorted(secrets) if re.fullmatch(r"1[3-9]\d{9}", s))
    pd.DataFrame({"x": [f"见{name}。"]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"x": [phone]}).to_parquet(tmp_path / "b.parquet")
    (tmp_path / "c.svg").write_text(f"<svg><text>{name}</text></svg>", encoding="utf-8")
    (tmp_path / "d.ipynb").write_text(
        json.dumps({"cells": [{"outputs": [{"text": phone}]}]}), encoding="utf-8"
    )
    found, _, _ = scan(tmp_path, secrets)
    assert sorted(found) == ["a.csv", "b.parquet", "c.svg", "d.ipynb"]
    assert name in found["a.csv"] & found["c.svg"] and phone in found["b.parquet"] & found["d.ipynb"]


# ----- properties over ingest and cleaning -----------------------------------------------------------------


def _inject(hh: pd.DataFrame, roster: pd.DataFrame, faults: list[tuple[str, int]]):
    """Faults a field team makes, each on submission (or roster row) ``i`` modulo the table's length."""
    hh, roster = hh.copy(), roster.copy()
    for kind, i in faults:
        h, r = i % len(hh), i % max(len(roster), 1)
        if kind == "duplicate":
            hh = pd.concat([hh, hh.iloc[[h]]], ignore_index=True)
        elif kind == "no_consent":
            hh.loc[h, "consent"] = "no"
        elif kind == "fullwidth_age" and len(roster):
            roster.loc[r, "roster/age"] = roster.loc[r, "roster/age"].translate(bi.FULL_WIDTH)
        elif kind == "text_age" and len(roster):
            roster.loc[r, "roster/age"] = "不详"
        elif kind == "age_999" and len(roster):
            roster.loc[r, "roster/age"] = "999"
        elif kind == "size_mismatch":
            hh.loc[h, "household/hh_size"] = "9"
        elif kind == "short_interview":
            hh.loc[h, "end"] = hh.loc[h, "start"]
        elif kind == "pii_in_comment":
            hh.loc[h, "comments"] = f"联系{hh.loc[h, 'respondent/resp_name']} {hh.loc[h, 'respondent/phone']}"
        elif kind == "test_submission":
            hh.loc[h, "enumerator"] = "test"
        elif kind == "blank_required":
            hh.loc[h, "location/cunju"] = ""
    return hh, roster


FAULTS = [
    "duplicate",
    "no_consent",
    "fullwidth_age",
    "text_age",
    "age_999",
    "size_mismatch",
    "short_interview",
    "pii_in_comment",
    "test_submission",
    "blank_required",
]


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.integers(0, len(HH_ALL) - 1), min_size=2, max_size=6, unique=True),
    faults=st.lists(st.tuples(st.sampled_from(FAULTS), st.integers(0, 50)), max_size=5),
)
@pytest.mark.slow
def test_raw_equals_clean_plus_deleted_and_no_pii(rows, faults, tmp_path_factory):
    hh = HH_ALL.iloc[sorted(rows)].reset_index(drop=True)
    roster = ROSTER_ALL[ROSTER_ALL["_parent_index"].isin(hh["_index"])].reset_index(drop=True)
    hh, roster = _inject(hh, roster, faults)
    path = bi.write_kobo(tmp_path_factory.mktemp("prop"), hh, roster)
    raw = read_export(path, FORM)
    result = clean_raw(FORM, raw)
    # accounting against the file as written (not the reader's own counts)
    assert len(raw.households) == len(hh) and len(raw.persons) == len(roster)
    deleted = set(result.deletion_log["uuid"])
    assert len(hh) == len(result.households) + len(result.deletion_log)
    assert not deleted & set(result.households["uuid"])
    assert len(roster) == len(result.persons) + raw.persons["uuid"].isin(deleted).sum()
    assert result.deletion_log["issue"].fillna("").ne("").all()
    secrets = pii_values(hh, roster)
    for name, table in [
        ("households", result.households),
        ("persons", result.persons),
        ("cleaning_log", result.cleaning_log),
        ("deletion_log", result.deletion_log),
        ("raw households", raw.households),
        ("raw persons", raw.persons),
    ]:
        assert not leaks(table_text(table), secrets), (
            f"{name} holds personal data: {leaks(table_text(table), secrets)}"
        )


def test_own_personal_answers_are_scrubbed_longest_first_then_in_text_order():
    """The order of a household's personal answers decides what is scrubbed when two overlap; it must not
    depend on Python's string hashing (which changes from run to run)."""
    from analysis.ingest.privacy import REDACTED, own_secrets, redact

    top = pd.DataFrame({"name": ["王小明", "李四", None], "address": ["小明路", " 李四 ", "x"]})
    members = pd.DataFrame({"_parent": [0, 0, 2], "member_name": ["明路口", "王小明", "赵六"]})
    own = own_secrets(top, members)
    assert own.tolist() == [("小明路", "明路口", "王小明"), ("李四",), ("赵六",)]
    # 小明路 and 明路口 overlap in the first note: 小明路 comes first in text order, so it is the one scrubbed
    texts = pd.DataFrame({"note": ["住小明路口", "李四说", "赵六"]})
    cleaned, changed = redact(texts, own)
    assert cleaned["note"].tolist() == [f"住{REDACTED}口", f"{REDACTED}说", REDACTED]
    assert changed["note"].all()


# ----- privacy of everything the main job writes ------------------------------------------------------------


def _pipeline(out: Path) -> tuple[float, str]:
    """Run the main job through the notebooks into ``out`` (figures in ``out/figures``); returns seconds and
    what it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--notebooks",
            "--out",
            str(out),
            "--figures",
            str(out / "figures"),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - started, done.stdout + done.stderr


def test_committed_notebooks_hold_no_personal_data():
    found, scanned, _ = scan(ROOT / "notebooks", raw_pii())
    assert len([p for p in scanned if p.suffix == ".ipynb"]) >= 5
    assert not found, found


@pytest.mark.slow
def test_existing_outputs_hold_no_personal_data():
    """build/ and figures/ as the last `make report` left them (skipped when there are none)."""
    folders = [ROOT / "build", ROOT / "figures"]
    if not all(f.is_dir() and any(f.iterdir()) for f in folders):
        pytest.skip(
            "no build/ and figures/ outputs; test_fresh_run_holds_no_personal_data covers a fresh run"
        )
    secrets = raw_pii()
    for folder in folders:
        found, scanned, _ = scan(folder, secrets)
        assert scanned and not found, found


@pytest.mark.slow
def test_fresh_run_holds_no_personal_data(tmp_path):
    """Everything a fresh run writes, and what it prints. brief.pdf is not read (no PDF text extractor is
    installed); it is Chromium's print of brief.html, which is scanned."""
    seconds, printed = _pipeline(tmp_path / "run")
    secrets = raw_pii()
    found, scanned, skipped = scan(tmp_path / "run", secrets)
    print(
        f"pipeline {seconds:.0f} s; scanned {len(scanned)} files; not scannable: {[p.name for p in skipped]}"
    )
    assert {p.suffix for p in scanned} >= {".csv", ".parquet", ".json", ".html", ".svg", ".png", ".ipynb"}
    assert not found, found
    assert not leaks(printed, secrets)


# ----- reproducibility --------------------------------------------------------------------------------------


def _normalised_notebook(path: Path, out: Path) -> str:
    """An executed notebook without papermill's timings and with the run's folder replaced: the injected
    parameters (out_dir, fig_dir) name the temporary folder, which necessarily differs between two runs,
    and papermill gives the injected-parameters cell a random cell id each run."""
    content = json.loads(path.read_text(encoding="utf-8"))
    content.get("metadata", {}).pop("papermill", None)
    for cell in content.get("cells", []):
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.pop("id", None)
    return json.dumps(content, ensure_ascii=False, sort_keys=True).replace(str(out), "<out>")


@pytest.mark.slow
def test_two_runs_give_identical_bytes(tmp_path, lock_differences):
    first, second = tmp_path / "A", tmp_path / "B"
    seconds = [_pipeline(first)[0], _pipeline(second)[0]]
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    compared, differ = [], []
    for name in files:
        a, b = first / name, second / name
        if name.suffix == ".ipynb":
            same = _normalised_notebook(a, first) == _normalised_notebook(b, second)
        elif name.suffix in {".csv", ".png", ".svg", ".json", ".html", ".parquet", ".pdf"}:
            same = a.read_bytes() == b.read_bytes()
        else:
            continue
        compared.append(str(name))
        if not same:
            differ.append(str(name))
    print(f"two runs: {seconds[0]:.0f} s and {seconds[1]:.0f} s; compared {len(compared)} files")
    assert {Path(c).suffix for c in compared} >= {".csv", ".png", ".svg", ".json", ".html", ".ipynb"}
    assert not differ, f"files that differ between two runs: {differ}"
    assert "SIMULATED DATA" in (first / "DATA_SOURCE.txt").read_text(encoding="utf-8")
    committed = sorted((ROOT / "figures").glob("*.png")) + sorted((ROOT / "figures").glob("*.svg"))
    # `make evaluate` (python -m analysis evaluate), not the main run, writes the annual-change figure
    elsewhere = {f.name for f in committed if not (first / "figures" / f.name).exists()}
    assert elsewhere <= {"annual_change.png", "annual_change.svg"}, (
        f"committed figures no run writes: {elsewhere}"
    )
    committed = [f for f in committed if f.name not in elsewhere]
    stale = [f.name for f in committed if f.read_bytes() != (first / "figures" / f.name).read_bytes()]
    assert committed
    if stale and lock_differences:  # same bytes are promised for the locked versions only
        pytest.skip(
            f"committed figures differ ({len(stale)} files) and installed packages differ from "
            f"requirements.lock: {', '.join(lock_differences)}"
        )
    assert not stale, f"committed figures/ out of date with the code (run `make report`): {stale}"


def _small_export(folder: Path) -> Path:
    hh, roster = bi.bundled(12)
    return bi.write_kobo(folder, hh, roster)


@pytest.mark.slow
def test_provenance_records_raw_checksum_and_versions(tmp_path):
    data = _small_export(tmp_path / "raw")
    clean_survey(bi.FORM, data, tmp_path / "out")
    provenance = json.loads((tmp_path / "out" / "clean" / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["raw_sha256"] == {bi.MAIN: sha256(data), bi.ROSTER: sha256(data.with_name(bi.ROSTER))}
    for package in ("pandas", "numpy", "pyarrow"):
        assert provenance["packages"][package] == metadata.version(package)
    assert provenance["packages"]["python"] == sys.version.split()[0]


@pytest.mark.slow
def test_changed_raw_file_is_reported_by_the_next_run(tmp_path):
    data = _small_export(tmp_path / "raw")
    out = tmp_path / "out"
    clean_survey(bi.FORM, data, out)
    assert raw_export_changes(data, out) == []
    roster = data.with_name(bi.ROSTER)
    text = roster.read_text(encoding="utf-8-sig").splitlines()
    roster.write_text("\n".join(text[:-1]) + "\n", encoding="utf-8-sig")  # one roster row dropped
    assert raw_export_changes(data, out) == [bi.ROSTER]
    empty = tmp_path / "no_notebooks"
    empty.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--data",
            str(data),
            "--out",
            str(out),
            "--figures",
            str(tmp_path / "fig"),
            "--notebooks",
            str(empty),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and bi.ROSTER in warning[0] and "changed" in warning[0], done.stdout


@pytest.mark.slow
def test_copied_raw_export_is_not_reported(tmp_path):
    """Same bytes in another folder: no warning (the check is by content, not by date or path)."""
    data = _small_export(tmp_path / "raw")
    clean_survey(bi.FORM, data, tmp_path / "out")
    copy = tmp_path / "copy"
    shutil.copytree(data.parent, copy)
    assert raw_export_changes(copy / bi.MAIN, tmp_path / "out") == []
    np.testing.assert_array_equal(sorted(p.name for p in copy.iterdir()), [bi.MAIN, bi.ROSTER])
