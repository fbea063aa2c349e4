"""analysis.csvtext writes the bytes pandas' ``to_csv(index=False)`` writes, for any table it accepts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import csvtext

TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\n\t;1.-居民é') + ["\u3000", "😀"]), max_size=8)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e-5, 1e16, 123456789.0, 0.1, 2.5, np.nan]),
)


def pandas_bytes(table: pd.DataFrame, tmp_path) -> bytes:
    path = tmp_path / "pandas.csv"
    table.to_csv(path, index=False, encoding="utf-8")
    return path.read_bytes()


def our_bytes(table: pd.DataFrame, tmp_path) -> bytes:
    path = tmp_path / "ours.csv"
    csvtext.write_csv(table, path)
    return path.read_bytes()


@st.composite
def tables(draw):
    n = draw(st.integers(0, 12))
    columns = {}
    for j in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["str", "object", "float", "int", "bool", "repeated"]))
        name = draw(st.sampled_from(["a", "b,c", 'q"uote', "名字", "x y"])) + str(j)
        if kind in ("str", "object"):
            values = draw(st.lists(st.one_of(TEXT, st.none()), min_size=n, max_size=n))
            columns[name] = pd.Series(values, dtype="str" if kind == "str" else object)
        elif kind == "float":
            columns[name] = pd.Series(draw(st.lists(NUMBERS, min_size=n, max_size=n)), dtype=float)
        elif kind == "repeated":  # few distinct answers, as survey columns
            columns[name] = pd.Series(
                draw(st.lists(st.sampled_from([1.0, 2.0, 0.5, np.nan]), min_size=n, max_size=n))
            )
        elif kind == "int":
            columns[name] = pd.Series(
                draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)), dtype="int64"
            )
        else:
            columns[name] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return pd.DataFrame(columns)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(tables())
def test_the_same_bytes_as_pandas(tmp_path_factory, table):
    tmp_path = tmp_path_factory.mktemp("csv")
    assert our_bytes(table, tmp_path) == pandas_bytes(table, tmp_path)


@pytest.mark.parametrize(
    "table",
    [
        pd.DataFrame({"only": ["", "a"]}),  # one column: csv quotes an empty row
        pd.DataFrame({"a": ["x\ry", "z"], "b": [1, 2]}),  # carriage return
        pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1, 2]}),
        pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": ["x", "y"]}),
        pd.DataFrame({"a": [1, "x"], "b": [1.5, None]}, dtype=object),
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        pd.DataFrame({"a": [], "b": []}),
    ],
    ids=[
        "one-column",
        "carriage-return",
        "categorical",
        "nullable-int",
        "mixed-object",
        "duplicate-names",
        "empty",
    ],
)
def test_tables_left_to_pandas_or_edge_cases_keep_pandas_bytes(tmp_path, table):
    assert our_bytes(table, tmp_path) == pandas_bytes(table, tmp_path)


def test_a_survey_sized_column_of_repeated_answers_keeps_every_value(tmp_path):
    rng = np.random.default_rng(3)
    values = rng.choice([1.0, 2.0, 3.5, np.nan, -0.0, 0.0], 50_000)
    table = pd.DataFrame({"x": values, "y": rng.choice(["是", "否", 'a,"b"'], 50_000)})
    assert our_bytes(table, tmp_path) == pandas_bytes(table, tmp_path)


def test_tables_of_text_and_numbers_are_not_handed_to_pandas(tmp_path, monkeypatch):
    table = pd.DataFrame(
        {"a": ["x,1", None, '"q"'], "b": [1.5, np.nan, 2.0], "c": [1, 2, 3], "d": [True, False, True]}
    )
    expected = pandas_bytes(table, tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("handed to pandas")

    monkeypatch.setattr(pd.DataFrame, "to_csv", refuse)
    assert our_bytes(table, tmp_path) == expected
