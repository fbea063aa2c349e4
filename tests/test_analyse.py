"""Lists of analyses: analysistools' own example reproduced row for row, its documented conventions, the
CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import analyse, loa
from analysis.errors import AnalysisError
from analysis.instrument import write_xlsx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "analysistools"
QUESTION = "edu_learning_conditions_reasons_v1"
EXAMPLES = [
    ("MSNA_template_loa.csv", "MSNA_template_no_ratio_results_table.csv"),
    ("MSNA_template_loa_with_ratio.csv", "MSNA_template_with_ratio_results_table.csv"),
]


def template_data() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "MSNA_template_data.csv")


def compare(got: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Rows matched on analysis_key (every key on both sides, once); returns the matched table."""
    assert got["analysis_key"].is_unique and expected["analysis_key"].is_unique
    assert set(got["analysis_key"]) == set(expected["analysis_key"])
    both = expected.merge(got, on="analysis_key", suffixes=("_r", ""), validate="one_to_one")
    for column in ("stat", "stat_low", "stat_upp"):
        np.testing.assert_allclose(
            both[column].astype(float), both[column + "_r"].astype(float), rtol=0, atol=1e-6
        )
    for column in ("n", "n_total", "n_w", "n_w_total"):
        np.testing.assert_allclose(
            both[column].astype(float), both[column + "_r"].astype(float), rtol=0, atol=1e-9
        )
    for column in ("analysis_type", "analysis_var", "analysis_var_value", "group_var", "group_var_value"):
        assert (
            both[column].fillna("<NA>").astype(str) == both[column + "_r"].fillna("<NA>").astype(str)
        ).all(), column
    return both


@pytest.mark.parametrize(("loa", "expected"), EXAMPLES)
def test_reproduces_analysistools_example_row_for_row(loa, expected):
    """analysistools' package data: its MSNA template data run through its two lists of analyses gives its
    own expected results tables (143 and 147 rows): same keys, stat and interval within 1e-6, same counts."""
    got = analyse.run(analyse.design_from_columns(template_data()), analyse.read_loa(FIXTURES / loa))
    expected = pd.read_csv(FIXTURES / expected)
    both = compare(got, expected)
    assert len(both) == len(expected) == len(got)
    assert list(got.columns) == analyse.RESULT_COLUMNS + analyse.EXTRA_COLUMNS
    # srvyr's degf of the whole (filtered) design, 100 households − 1, also for the groups' means; a group's
    # median takes the group's own df (svyquantile), e.g. 31 households in admin1a: 30
    grouped_median = (got["analysis_type"] == "median") & got["group_var"].notna()
    assert (got.loc[~grouped_median, "df"] == 99).all()
    assert got.loc[grouped_median, "df"].tolist() == [30, 26, 41] * 2
    # lines come in analysistools' order: the list's rows, then groups, then answers
    assert got["analysis_key"].tolist() == expected["analysis_key"].tolist()


def test_select_multiple_options_from_the_form_or_from_the_answers_give_the_same_table(tmp_path):
    loa = analyse.read_loa(FIXTURES / "MSNA_template_loa.csv")
    expected = pd.read_csv(FIXTURES / "MSNA_template_no_ratio_results_table.csv")
    form = write_xlsx(
        {
            "survey": pd.read_csv(FIXTURES / "MSNA_template_survey.csv", dtype=str).fillna(""),
            "choices": pd.read_csv(FIXTURES / "MSNA_template_choices.csv", dtype=str).fillna(""),
        },
        tmp_path / "form.xlsx",
    )
    with_form = analyse.run(analyse.design_from_columns(template_data()), loa, form=form)
    compare(with_form, expected)
    answers_only = template_data().loc[:, lambda d: ~d.columns.str.startswith(QUESTION + "/")]
    compare(analyse.run(analyse.design_from_columns(answers_only), loa, form=form), expected)
    dotted = template_data().rename(columns=lambda c: c.replace(QUESTION + "/", QUESTION + "."))
    compare(analyse.run(analyse.design_from_columns(dotted), loa), expected)


def school() -> pd.DataFrame:
    """analysistools' documentation example for ratios (create_analysis_ratio)."""
    return pd.DataFrame(
        {
            "hh": ["hh1", "hh2", "hh3", "hh4"],
            "num_children": [3, 0, 2, np.nan],
            "num_enrolled": [3, np.nan, 0, np.nan],
            "num_attending": [1, np.nan, np.nan, np.nan],
            "group": ["a", "a", "b", "b"],
        }
    )


@pytest.mark.parametrize(
    ("na_to_0", "filter_0", "ratio", "n"),
    [
        ("TRUE", "TRUE", 0.2, 2),  # hh3's missing numerator counts as 0; hh2 (no children) is filtered out
        ("FALSE", "TRUE", 1 / 3, 1),  # hh3 is left out
        ("TRUE", "FALSE", 0.2, 3),  # hh2 is counted, adding 0 / 0
    ],
)
def test_ratio_options_as_analysistools_documents_them(na_to_0, filter_0, ratio, n):
    loa = pd.DataFrame(
        {
            "analysis_type": ["ratio"],
            "analysis_var_numerator": ["num_attending"],
            "analysis_var_denominator": ["num_children"],
            "numerator_NA_to_0": [na_to_0],
            "filter_denominator_0": [filter_0],
        }
    )
    row = analyse.run(analyse.design_from_columns(school()), loa).iloc[0]
    assert row["stat"] == pytest.approx(ratio) and row["n"] == n == row["n_total"]
    assert row["analysis_key"] == "ratio @/@ num_attending %/% NA -/- num_children %/% NA @/@ NA %/% NA"


def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "w": [1.0, 2, 3, 4, 5, 6],
            "y": [1.0, np.nan, 3, 4, np.nan, 6],
            "pick": ["a", "b", None, "a", "a", "b"],
            "multi": ["x y", None, "y", "x", None, "z"],
            "area": ["n", "n", "n", "s", "s", None],
            "zone": [1, 2, 1, 2, 1, 2],
        }
    )


def test_missing_answers_leave_the_analysis_and_are_counted_on_their_own_line():
    design = analyse.design_from_columns(small(), weights="w")
    loa = pd.DataFrame(
        {
            "analysis_type": ["mean", "prop_select_one", "prop_select_multiple"],
            "analysis_var": ["y", "pick", "multi"],
            "group_var": ["", "", ""],
        }
    )
    out = analyse.run(design, loa).set_index("analysis_key")
    mean = out.loc["mean @/@ y %/% NA @/@ NA %/% NA"]
    assert mean["stat"] == pytest.approx((1 + 9 + 16 + 36) / 14) and mean["n"] == 4 and mean["n_w"] == 14
    assert mean["df"] == 3  # rows with a value, each its own PSU: 4 − 1
    share = out.loc["prop_select_one @/@ pick %/% a @/@ NA %/% NA"]
    assert share["stat"] == pytest.approx(10 / 18) and (share["n"], share["n_total"]) == (3, 5)
    missing = out.loc["prop_select_one @/@ pick %/% NA @/@ NA %/% NA"]
    assert missing["n"] == 1 and np.isnan(missing["stat"]) and pd.isna(missing["analysis_var_value"])
    option = out.loc["prop_select_multiple @/@ multi %/% x @/@ NA %/% NA"]
    assert option["stat"] == pytest.approx(5 / 14) and (
        option["n"],
        option["n_total"],
        option["n_w_total"],
    ) == (2, 4, 14)
    assert out.loc["prop_select_multiple @/@ multi %/% NA @/@ NA %/% NA", "n"] == 2


def test_groups_cross_and_a_missing_group_value_is_the_group_na():
    loa = pd.DataFrame({"analysis_type": ["total"], "analysis_var": ["y"], "group_var": ["area, zone"]})
    out = analyse.run(analyse.design_from_columns(small(), weights="w"), loa)
    assert out["group_var"].unique().tolist() == ["area %/% zone"]
    assert "NA %/% 2" in set(out["group_var_value"])
    assert "total @/@ y %/% NA @/@ area %/% n -/- zone %/% 1" in set(out["analysis_key"])
    row = out.set_index("group_var_value").loc["n %/% 1"]
    assert row["stat"] == pytest.approx(1 + 9) and row["n"] == 2


def test_a_group_without_values_keeps_its_line_with_n_0_and_no_statistics():
    data = small().assign(y=[1.0, 2, 3, np.nan, np.nan, np.nan])
    loa = pd.DataFrame({"analysis_type": ["mean"], "analysis_var": ["y"], "group_var": ["area"]})
    out = analyse.run(analyse.design_from_columns(data, weights="w"), loa).set_index("group_var_value")
    assert out.loc["s", "n"] == 0 and np.isnan(out.loc["s", "stat"]) and np.isnan(out.loc["s", "stat_low"])


def test_interval_options_logit_domain_df_and_normal():
    data = small().assign(psu=[1, 2, 3, 4, 5, 6])
    base = {"analysis_type": ["prop_select_one"] * 3, "analysis_var": ["pick"] * 3, "group_var": ["area"] * 3}
    loa = pd.DataFrame({**base, "ci": ["wald", "logit", "wald"], "df": ["design", "domain", "z"]})
    out = analyse.run(analyse.design_from_columns(data, weights="w"), loa)
    a = out[(out["group_var_value"] == "n") & (out["analysis_var_value"] == "a")]
    assert a["df"].tolist() == [4, 1, np.inf]  # 5 answered rows − 1; 2 answered rows in "n" − 1; normal
    wald, logit, normal = a.to_dict("records")
    assert normal["stat_upp"] - normal["stat"] == pytest.approx(1.959963984540054 * normal["se"])
    assert 0 < logit["stat_low"] < logit["stat"] < logit["stat_upp"] < 1
    assert wald["stat_upp"] - wald["stat"] > normal["stat_upp"] - normal["stat"]


@pytest.mark.parametrize(
    ("row", "column", "text"),
    [
        ({"analysis_type": "mean", "analysis_var": "wieght"}, "analysis_var", "'wieght' is not in the data"),
        (
            {"analysis_type": "average", "analysis_var": "y"},
            "analysis_type",
            "unknown analysis type 'average'",
        ),
        (
            {"analysis_type": "mean", "analysis_var": "y", "group_var": "area, district"},
            "group_var",
            "'district'",
        ),
        (
            {"analysis_type": "ratio", "analysis_var_numerator": "y", "analysis_var_denominator": ""},
            "analysis_var_denominator",
            "is empty",
        ),
        ({"analysis_type": "mean", "analysis_var": "pick"}, "analysis_var", "not numeric"),
        ({"analysis_type": "mean", "analysis_var": "y", "level": "95%"}, "level", "not a confidence level"),
        (
            {"analysis_type": "prop_select_multiple", "analysis_var": "nothing"},
            "analysis_var",
            "no options found",
        ),
    ],
)
def test_a_bad_list_names_its_row_and_column(row, column, text):
    loa = pd.DataFrame([{"analysis_type": "mean", "analysis_var": "y"}, row]).fillna("")
    with pytest.raises(AnalysisError) as caught:
        analyse.run(analyse.design_from_columns(small(), weights="w"), loa, source="loa.csv")
    message = str(caught.value)
    assert "loa.csv" in message and "row 3" in message and f"'{column}'" in message and text in message, (
        message
    )
    assert "\n" not in message


def test_a_ratio_list_without_the_denominator_column_is_refused():
    loa = pd.DataFrame({"analysis_type": ["ratio"], "analysis_var_numerator": ["y"]})
    with pytest.raises(
        AnalysisError, match="needs a analysis_var_denominator column|analysis_var_denominator"
    ):
        analyse.run(analyse.design_from_columns(small()), loa, source="loa.csv")


def test_values_print_as_r_prints_them():
    numbers = loa.as_text(pd.Series([1.0, 2.5, np.nan, 1e6]))
    assert numbers[:2].tolist() == ["1", "2.5"] and pd.isna(numbers[2]) and numbers[3] == "1000000"
    assert loa.as_text(pd.Series([True, False])).tolist() == ["TRUE", "FALSE"]
    mixed = loa.as_text(pd.Series(["a", None, 3.0], dtype=object))
    assert mixed[0] == "a" and pd.isna(mixed[1]) and mixed[2] == "3"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", "analyse", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_writes_the_results_table(tmp_path):
    out = tmp_path / "results.csv"
    done = cli(
        "--data",
        str(FIXTURES / "MSNA_template_data.csv"),
        "--loa",
        str(FIXTURES / "MSNA_template_loa.csv"),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    compare(pd.read_csv(out), pd.read_csv(FIXTURES / "MSNA_template_no_ratio_results_table.csv"))


@pytest.mark.slow
def test_cli_bad_list_exits_2_with_one_line(tmp_path):
    loa = tmp_path / "loa.csv"
    pd.DataFrame(
        {
            "analysis_type": ["mean", "ratio"],
            "analysis_var": ["income_v1_salaried_work", ""],
            "analysis_var_numerator": ["", "expenditure_debt"],
        }
    ).to_csv(loa, index=False)
    done = cli(
        "--data",
        str(FIXTURES / "MSNA_template_data.csv"),
        "--loa",
        str(loa),
        "--out",
        str(tmp_path / "r.csv"),
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 3" in lines[0] and "analysis_var_denominator" in lines[0], done.stderr
    assert not (tmp_path / "r.csv").exists()


def derived(name: str) -> pd.DataFrame:
    """The api data of the core's reference tests with the missing values srvyr_reference.R puts in."""
    data = pd.read_csv(ROOT / "tests" / "reference" / "data" / f"{name}.csv")
    row = np.arange(1, len(data) + 1)
    options = pd.DataFrame(
        {
            "sch_wide": data["sch.wide"] == "Yes",
            "comp_imp": data["comp.imp"] == "Yes",
            "both": data["both"] == "Yes",
        }
    )
    asked = row % 4 != 0
    extra = {
        "ed_na": data["avg.ed"].where(row % 7 != 0),
        "awards_na": data["awards"].where(row % 5 != 0),
        "multi": pd.Series([" ".join(options.columns[x]) for x in options.to_numpy()]).where(asked),
        **{f"multi/{o}": options[o].astype(float).where(asked) for o in options.columns},
        **{f"num_{flags}": data["api00"].where(row % 6 != 0) for flags in ("tt", "tf", "ft", "ff")},
        "den": data["api99"].where(row % 9 != 0, 0),
    }
    return data.assign(**extra)


def srvyr_loa(level: float) -> pd.DataFrame:
    rows = [
        ("mean", "ed_na"),
        ("total", "enroll"),
        ("prop_select_one", "awards_na"),
        ("prop_select_multiple", "multi"),
        ("median", "api00"),
        ("median", "ed_na"),
    ]
    loa = [{"analysis_type": kind, "analysis_var": var} for kind, var in rows]
    loa += [
        {
            "analysis_type": "ratio",
            "analysis_var_numerator": f"num_{flags}",
            "analysis_var_denominator": "den",
            "numerator_NA_to_0": str(flags[0] == "t").upper(),
            "filter_denominator_0": str(flags[1] == "t").upper(),
        }
        for flags in ("tt", "tf", "ft", "ff")
    ]
    both = [{**row, "group_var": group} for group in ("", "stype") for row in loa]
    return pd.DataFrame(both).fillna("").assign(level=str(level))


@pytest.mark.parametrize("name", ["strat", "clus2"])
def test_conventions_agree_with_r_survey_on_weighted_stratified_and_clustered_designs(name):
    """srvyr_reference.R computes analysistools' conventions with R survey on the api data (stratified with
    weights and fpc; two-stage clusters with fpc) with missing answers, zero denominators and two levels:
    estimates and intervals agree to 1e-9, counts exactly, weighted counts to 1e-9."""
    reference = pd.read_csv(FIXTURES / "srvyr_reference.csv").query("design == @name")
    if name == "strat":
        design = analyse.design_from_columns(derived("apistrat"), weights="pw", strata="stype", fpc=["fpc"])
    else:
        design = analyse.design_from_columns(derived("apiclus2"), ids=["dnum", "snum"], fpc=["fpc1", "fpc2"])
    for level, expected in reference.groupby("level"):
        got = analyse.run(design, srvyr_loa(level)).set_index("analysis_key")
        assert set(expected["key"]) <= set(got.index), set(expected["key"]) - set(got.index)
        both = expected.set_index("key").join(got.add_suffix("_py"))
        for column in ("stat", "stat_low", "stat_upp", "n_w"):
            np.testing.assert_allclose(
                both[column + "_py"].astype(float), both[column], rtol=1e-9, err_msg=column
            )
        assert (both["n_py"].astype(int) == both["n"]).all()
    assert len(reference) == 104


def test_select_multiple_shares_are_the_cores_select_multiple_proportions():
    """The engine's option shares and SEs are the core's Design.proportion(options=...) (svymean on the
    question's respondents)."""
    design = analyse.design_from_columns(derived("apiclus2"), ids=["dnum", "snum"], fpc=["fpc1", "fpc2"])
    options = {f"multi/{o}": o for o in ("sch_wide", "comp_imp", "both")}
    core = design.proportion("multi", by="stype", options=options, ci="wald")
    loa = pd.DataFrame(
        {"analysis_type": ["prop_select_multiple"], "analysis_var": ["multi"], "group_var": ["stype"]}
    )
    got = analyse.run(design, loa).dropna(subset=["stat"])
    both = core.merge(got, left_on=["stype", "level"], right_on=["group_var_value", "analysis_var_value"])
    assert len(both) == len(core) == 9
    np.testing.assert_allclose(both["stat"], both["estimate"], rtol=1e-12)
    np.testing.assert_allclose(both["se_y"], both["se_x"], rtol=1e-12)


@pytest.mark.parametrize("loa", [loa for loa, _ in EXAMPLES])
def test_batches_made_at_once_give_the_table_made_one_after_another(loa, monkeypatch):
    """Batches estimated in two threads give the same table, to the last bit and in the same order, as
    batches estimated one at a time."""
    design, analyses = analyse.design_from_columns(template_data()), analyse.read_loa(FIXTURES / loa)
    monkeypatch.setattr(analyse, "THREADS", 2)
    together = analyse.run(design, analyses)
    monkeypatch.setattr(analyse, "THREADS", 1)
    pd.testing.assert_frame_equal(together, analyse.run(design, analyses), check_exact=True)
