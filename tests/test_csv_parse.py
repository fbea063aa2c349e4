"""Arrow parses export CSVs into the table pandas' C parser gives (analysis.ingest.files.read_csv)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.ingest import files

FIELD = st.text(alphabet=st.sampled_from(list('ab ,"\n\r;1名é') + ["\t", "😀"]), max_size=6)
JUNK = st.sampled_from(["", "   ", "\t", ",", "x", "a,b,c,d,e,f,g,h", '"unclosed', '"a"b,c'])


@st.composite
def csv_texts(draw):
    k = draw(st.integers(1, 5))
    header = [f"h{j}" + draw(st.sampled_from(["", " ", "名"])) for j in range(k)]
    rows = draw(st.lists(st.lists(FIELD, min_size=k, max_size=k), max_size=8))
    out = io.StringIO()
    csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows([header, *rows])
    lines = out.getvalue().split("\n")
    for _ in range(draw(st.integers(0, 2))):  # hand-edited or damaged files
        lines.insert(draw(st.integers(1, len(lines))), draw(JUNK))
    return "\n".join(lines)


def pandas_only(path):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(files, "_arrow_parse", lambda text, header: None)
        return files.read_csv(path)


def outcome(read, path):
    try:
        return read(path)
    except files.IngestError as exc:
        return str(exc)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(csv_texts())
def test_arrow_and_pandas_read_the_same_table(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "export.csv"
    path.write_text(text, encoding="utf-8")
    ours = outcome(files.read_csv, path)
    theirs = outcome(pandas_only, path)
    if isinstance(theirs, pd.DataFrame):
        assert isinstance(ours, pd.DataFrame)
        pd.testing.assert_frame_equal(ours, theirs)
    else:
        assert ours == theirs


def test_a_well_formed_export_is_parsed_by_arrow(tmp_path, monkeypatch):
    path = tmp_path / "export.csv"
    path.write_text('uuid,note\nu1,"a, ""b""\nc"\nu2,\n', encoding="utf-8")
    expected = pandas_only(path)
    monkeypatch.setattr(files.pd, "read_csv", lambda *a, **k: (_ for _ in ()).throw(AssertionError("pandas")))
    got = files.read_csv(path)
    pd.testing.assert_frame_equal(got, expected)
    assert got["note"].tolist() == ['a, "b"\nc', ""]
