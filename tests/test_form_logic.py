"""XLSForm expressions evaluate column-wise with XPath 1.0 semantics as ODK applies them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.form_logic import ExpressionError, evaluate, evaluate_bool, parse, references

FRAME = pd.DataFrame(
    {
        "age": [70.0, 30.0, np.nan, 5.0],
        "needs": ["meal other", "meal", None, "other"],
        "reg": ["nonlocal", "local", None, "nonlocal"],
        "text": ["abc", "", None, "hello"],
    }
)


@pytest.mark.parametrize(
    "expression, expected",
    [
        # a blank number compares false both ways (XPath: number('') is NaN)
        ("${age} >= 60", [True, False, False, False]),
        ("${age} < 60", [False, True, False, True]),
        ("${age} >= 16 and ${reg} = 'nonlocal'", [True, False, False, False]),
        ("${age} < 10 or ${reg} = 'local'", [False, True, False, True]),
        ("not(${reg} = 'local')", [True, False, True, True]),
        ("selected(${needs}, 'other')", [True, False, False, True]),
        ("selected(${needs}, 'meal') and not(selected(${needs}, 'other'))", [False, True, False, False]),
        ("count-selected(${needs}) <= 1", [False, True, True, True]),
        ("${text} != ''", [True, False, False, True]),
        ("${text} = ''", [False, True, True, False]),
        ("string-length(${text}) > 3", [False, False, False, True]),
        ("${age} mod 2 = 0", [True, True, False, False]),
        ("${age} div 10 >= 3", [True, True, False, False]),
        ("if(${age} > 60, 'old', 'young') = 'old'", [True, False, False, False]),
        ("coalesce(${reg}, 'unknown') = 'unknown'", [False, False, True, False]),
        ("-${age} < -20", [True, True, False, False]),
        ("(${age} + 5) * 2 > 100", [True, False, False, False]),
        ("regex(${text}, '^h')", [False, False, False, True]),
        ("true() and not(false())", [True, True, True, True]),
    ],
)
def test_expressions_follow_xpath_semantics(expression, expected):
    assert evaluate_bool(expression, FRAME).tolist() == expected


def test_constraint_uses_the_current_field():
    ages = pd.Series([-1.0, 0.0, 110.0, 111.0, np.nan])
    ok = evaluate_bool(". >= 0 and . <= 110", pd.DataFrame(index=ages.index), current=ages)
    assert ok.tolist() == [False, True, True, False, False]


def test_numeric_codes_stored_as_text_compare_as_numbers():
    frame = pd.DataFrame({"wg": ["1", "3", "4", None]})
    assert evaluate_bool("${wg} >= 3", frame).tolist() == [False, True, True, False]
    assert evaluate_bool("${wg} = 3", frame).tolist() == [False, True, False, False]
    assert evaluate_bool("${wg} = '3'", frame).tolist() == [False, True, False, False]


def test_precedence_and_binds_tighter_than_or():
    frame = pd.DataFrame({"a": [1.0], "b": [0.0], "c": [0.0]})
    assert evaluate_bool("${a} = 1 or ${b} = 1 and ${c} = 1", frame).tolist() == [True]
    assert evaluate_bool("(${a} = 1 or ${b} = 1) and ${c} = 1", frame).tolist() == [False]


def test_parse_is_cached_and_references_are_listed():
    assert parse("${a} > 1") is parse("${a} > 1")
    assert references("selected(${x}, 'o') and ${y} + ${z} > 2") == {"x", "y", "z"}


@pytest.mark.parametrize(
    "bad",
    [
        "__import__('os').system('true')",
        "${a} >",
        "${a} ** 2",
        "foo(${a})",
        "selected(${a})",
        "${a} = 'unclosed",
        "",
    ],
)
def test_user_text_is_parsed_never_evaluated(bad):
    with pytest.raises(ExpressionError):
        evaluate(bad, pd.DataFrame({"a": [1.0]}))


def test_unknown_field_is_named():
    with pytest.raises(ExpressionError, match="missing_field"):
        evaluate("${missing_field} > 1", pd.DataFrame({"a": [1.0]}))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-50, 50), st.integers(1, 50), st.integers(-50, 50)), min_size=1, max_size=30
    )
)
def test_arithmetic_matches_numpy(rows):
    frame = pd.DataFrame(rows, columns=["a", "b", "c"]).astype(float)
    got = evaluate("${a} * 2 - ${c} div ${b} + ${a} mod ${b}", frame)
    a, b, c = frame["a"].to_numpy(), frame["b"].to_numpy(), frame["c"].to_numpy()
    np.testing.assert_allclose(got.to_numpy(), a * 2 - c / b + np.fmod(a, b))
    assert (evaluate_bool("${a} > ${c} and not(${b} = 1)", frame).to_numpy() == ((a > c) & (b != 1))).all()


def test_an_invalid_regex_pattern_is_an_expression_error_naming_it():
    frame = pd.DataFrame({"code": ["E01", "x"]})
    with pytest.raises(ExpressionError, match="not a valid regular expression"):
        evaluate_bool("regex(${code}, '^E[0-9')", frame)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.one_of(st.none(), st.text(alphabet="ab \t\u3000\xa0\x1c_1", max_size=8)), max_size=20),
    st.sampled_from(["str", "string", object]),
)
def test_selected_answers_are_split_once_per_distinct_answer_as_per_cell(values, dtype):
    """selected()'s padded answers (options between single spaces) are those splitting every cell."""
    from analysis.form_logic import _as_string, _split_selected

    column = pd.Series(values, dtype=dtype)
    every_cell = " " + _as_string(column).str.split().str.join(" ").fillna("") + " "
    pd.testing.assert_series_equal(_split_selected(column), every_cell)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.one_of(st.none(), st.text(alphabet="ab \t\u3000_1", max_size=6)), min_size=1, max_size=20),
    st.sampled_from(["str", object]),
    st.sampled_from(["a", "b", "a_1", "", "1"]),
)
def test_selected_one_option_is_sought_once_per_distinct_answer_as_per_cell(values, dtype, option):
    """selected(${x}, 'o') equals searching every cell's padded answer for " o "."""
    from analysis.form_logic import _as_string

    column = pd.Series(values, dtype=dtype)
    padded = " " + _as_string(column).str.split().str.join(" ").fillna("") + " "
    every_cell = padded.str.contains(f" {option} ", regex=False).astype(bool)
    got = evaluate_bool(f"selected(${{x}}, '{option}')", pd.DataFrame({"x": column}))
    pd.testing.assert_series_equal(got, every_cell, check_names=False)
