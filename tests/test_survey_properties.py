"""Properties of analysis.survey that hold for any design, and the errors a user can cause."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.errors import DesignError
from analysis.survey import Design, ReplicateDesign


@st.composite
def samples(draw):
    """A stratified cluster sample: 2–4 strata × 2–5 PSUs × 1–6 rows, positive weights."""
    n_strata = draw(st.integers(2, 4))
    rows = []
    for h in range(n_strata):
        for p in range(draw(st.integers(2, 5))):
            for _ in range(draw(st.integers(1, 6))):
                rows.append((f"s{h}", f"s{h}p{p}"))
    n = len(rows)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rows, columns=["stratum", "psu"])
    df["w"] = rng.uniform(1, 50, n)
    df["y"] = rng.normal(10, 3, n).round(3)
    df["g"] = rng.choice(["a", "b", "c"], n)
    df["sex"] = rng.choice(["f", "m"], n)
    return df


@settings(max_examples=40, deadline=None, derandomize=True)
@given(samples(), st.floats(0.01, 1000))
def test_scaling_all_weights_leaves_means_and_their_se_unchanged(df, c):
    d1 = Design(df, weights="w", strata="stratum", ids="psu")
    d2 = Design(df.assign(w=df["w"] * c), weights="w", strata="stratum", ids="psu")
    a, b = d1.mean("y", by="g"), d2.mean("y", by="g")
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-12)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-9, atol=1e-12 * df["y"].abs().max())


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True)
@given(samples())
def test_domain_mean_is_the_ratio_of_domain_totals(df):
    d = Design(df.assign(one=1.0), weights="w", strata="stratum", ids="psu")
    by = d.mean("y", by="g").set_index("g")
    for g, row in by.iterrows():
        x = df.assign(yg=np.where(df["g"] == g, df["y"], 0.0), ig=(df["g"] == g).astype(float))
        dd = Design(x, weights="w", strata="stratum", ids="psu")
        tot_y = dd.total("yg")["estimate"].iloc[0]
        tot_1 = dd.total("ig")["estimate"].iloc[0]
        r = dd.ratio("yg", "ig")
        assert row["estimate"] == pytest.approx(tot_y / tot_1, rel=1e-12)
        assert row["se"] == pytest.approx(r["se"].iloc[0], rel=1e-9)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(samples(), st.integers(0, 2**31 - 1))
def test_raking_reproduces_the_margins(df, seed):
    # margins of some positive reweighting of the sample, so that weights meeting both exist
    v = pd.Series(np.random.default_rng(seed).uniform(1, 100, len(df)) * df["w"].to_numpy())
    pop_g = v.groupby(df["g"].to_numpy()).sum().to_dict()
    pop_sex = v.groupby(df["sex"].to_numpy()).sum().to_dict()
    d = Design(df, weights="w", strata="stratum", ids="psu").rake(
        {"g": pop_g, "sex": pop_sex}, tol=1e-12, max_iter=1000
    )
    got_g = pd.Series(d.weights).groupby(df["g"].to_numpy()).sum()
    got_sex = pd.Series(d.weights).groupby(df["sex"].to_numpy()).sum()
    for k, count in pop_g.items():
        assert got_g[k] == pytest.approx(count, rel=1e-9)
    for k, count in pop_sex.items():
        assert got_sex[k] == pytest.approx(count, rel=1e-9)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(samples(), st.integers(0, 2**31 - 1))
def test_linear_calibration_reproduces_the_totals(df, seed):
    v = pd.Series(np.random.default_rng(seed).uniform(0.5, 2, len(df)) * df["w"].to_numpy())
    counts = v.groupby(df["g"].to_numpy()).sum().to_dict()
    y_total = float((v * df["y"].to_numpy()).sum())
    d = Design(df, weights="w", strata="stratum", ids="psu")
    X = np.column_stack([pd.get_dummies(df["g"]).to_numpy(float), df["y"].to_numpy()])
    if np.linalg.matrix_rank(X) < X.shape[1]:  # y constant within levels: collinear, refused
        with pytest.raises(DesignError, match="collinear"):
            d.calibrate({"g": counts, "y": y_total})
        return
    cal = d.calibrate({"g": counts, "y": y_total})
    got = pd.Series(cal.weights).groupby(df["g"].to_numpy()).sum()
    for k, c in counts.items():
        assert got[k] == pytest.approx(c, rel=1e-9)
    assert float(cal.weights @ df["y"].to_numpy()) == pytest.approx(y_total, rel=1e-9)
    # the calibrated total of a calibration variable has no sampling variance
    assert cal.total("y")["se"].iloc[0] <= 1e-7 * abs(y_total) + 1e-9


def test_raking_to_margins_no_weights_can_meet_is_an_error():
    df = pd.DataFrame({"g": ["b", "b", "b", "c"], "sex": ["f", "m", "m", "f"], "w": 1.0})
    d = Design(df, weights="w")
    with pytest.raises(DesignError, match="no weights meet all margins"):
        d.rake({"g": {"b": 60.0, "c": 40.0}, "sex": {"f": 25.0, "m": 75.0}}, max_iter=1000)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=40), st.integers(0, 1000))
def test_jk1_on_an_srs_gives_the_textbook_se(y, extra):
    """Delete-one jackknife of an SRS mean: se² = (1 − n/N) s²/n exactly (Wolter 2007, §4.2)."""
    y = np.array(y)
    n = len(y)
    N = n + extra
    df = pd.DataFrame({"y": y, "N": float(N)})
    got = Design(df, fpc="N").replicate("JK1").mean("y")["se"].iloc[0]
    textbook = np.sqrt((1 - n / N) * y.var(ddof=1) / n)
    assert got == pytest.approx(textbook, rel=1e-9, abs=1e-12)


# -- bootstrap and replicate weights ----------------------------------------------------------


def stratified_frame(seed=3):
    rng = np.random.default_rng(seed)
    psu = np.repeat(np.arange(60), 8)
    df = pd.DataFrame({"stratum": psu // 6, "psu": psu})
    effect = rng.normal(0, 2, 60)[psu]
    df["y"] = 10 + effect + rng.normal(0, 1, len(df))
    df["w"] = rng.uniform(5, 15, len(df))
    df["g"] = rng.choice(["a", "b"], len(df))
    return df


def test_rao_wu_bootstrap_variance_is_close_to_the_taylor_variance():
    """E[bootstrap variance] equals the with-replacement Taylor variance (Rao & Wu 1988); with 4,000
    replicates the Monte Carlo error of the variance is about 2%, so 10% is a safe margin."""
    d = Design(stratified_frame(), weights="w", strata="stratum", ids="psu")
    taylor = d.mean("y")["se"].iloc[0] ** 2
    boot = d.replicate("bootstrap", replicates=4000, seed=11).mean("y")["se"].iloc[0] ** 2
    assert boot == pytest.approx(taylor, rel=0.10)


def test_bootstrap_is_reproducible_and_its_weights_are_usable_as_user_weights():
    df = stratified_frame()
    d = Design(df, weights="w", strata="stratum", ids="psu")
    r1 = d.replicate("bootstrap", replicates=50, seed=5)
    r2 = d.replicate("bootstrap", replicates=50, seed=5)
    W = r1.replicate_weights()
    assert W.shape == (len(df), 50)
    np.testing.assert_array_equal(W, r2.replicate_weights())
    np.testing.assert_allclose(
        r1.replicate_totals(df["y"].to_numpy())[:, 0], W.T @ df["y"].to_numpy(), rtol=1e-12
    )
    user = ReplicateDesign(
        df.join(pd.DataFrame(W, columns=[f"b{i}" for i in range(50)])),
        weights="w",
        repweights=[f"b{i}" for i in range(50)],
        type="bootstrap",
    )
    a, b = r1.mean("y", by="g"), user.mean("y", by="g")
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-10)


def test_calibration_is_redone_in_every_bootstrap_replicate():
    df = stratified_frame()
    pop = {"a": 3000.0, "b": 2000.0}
    rep = (
        Design(df, weights="w", strata="stratum", ids="psu")
        .poststratify("g", pop)
        .replicate("bootstrap", replicates=30, seed=1)
    )
    W = rep.replicate_weights()
    for level, count in pop.items():
        np.testing.assert_allclose(W[(df["g"] == level).to_numpy()].sum(axis=0), count, rtol=1e-12)
    # a post-stratified count has no sampling variance
    assert rep.total("y", by="g")["se"].gt(0).all()
    assert rep.proportion("g", ci="wald")["se"].max() < 1e-9


# -- errors a user can cause ------------------------------------------------------------------


@pytest.fixture
def df():
    return stratified_frame()


def test_unknown_column_is_named(df):
    with pytest.raises(DesignError) as err:
        Design(df, weights="weight", strata="stratum", ids="psu")
    assert err.value.column == "weight" and "unknown column" in str(err.value)
    d = Design(df, weights="w", strata="stratum", ids="psu")
    with pytest.raises(DesignError, match="unknown column") as err:
        d.mean("income")
    assert err.value.column == "income"
    with pytest.raises(DesignError, match="unknown column"):
        d.mean("y", by="district")


@pytest.mark.parametrize("bad, problem", [(-1.0, "negative"), (np.nan, "missing weights")])
def test_negative_or_missing_weights_are_refused(df, bad, problem):
    df.loc[7, "w"] = bad
    with pytest.raises(DesignError, match=problem) as err:
        Design(df, weights="w", strata="stratum", ids="psu")
    assert err.value.column == "w"


def test_fpc_smaller_than_the_sample_is_refused(df):
    df["N"] = 5  # each stratum has 6 sampled PSUs
    with pytest.raises(DesignError, match="fpc smaller than the sample") as err:
        Design(df, weights="w", strata="stratum", ids="psu", fpc="N")
    assert err.value.column == "N"


def test_fpc_mixing_sizes_and_fractions_is_refused(df):
    df["f"] = np.where(df["stratum"] == 0, 0.5, 20)
    with pytest.raises(DesignError, match="mixes population sizes"):
        Design(df, weights="w", strata="stratum", ids="psu", fpc="f")


def test_non_numeric_variable_and_missing_values_are_refused(df):
    d = Design(df, weights="w", strata="stratum", ids="psu")
    with pytest.raises(DesignError, match="not numeric") as err:
        d.mean("g")
    assert err.value.column == "g"
    df.loc[3, "y"] = np.nan
    d = Design(df, weights="w", strata="stratum", ids="psu")
    with pytest.raises(DesignError, match="missing values") as err:
        d.mean("y")
    assert err.value.column == "y"
    assert d.mean("y", na_rm=True)["n"].iloc[0] == len(df) - 1


def test_clusters_crossing_strata_need_nest(df):
    df["psu"] = df["psu"] % 6  # ids restart in each stratum
    with pytest.raises(DesignError, match="not nested"):
        Design(df, weights="w", strata="stratum", ids="psu")
    assert Design(df, weights="w", strata="stratum", ids="psu", nest=True).degf == 60 - 10


def test_empty_margin_cell_and_non_convergence_are_clear(df):
    d = Design(df, weights="w", strata="stratum", ids="psu")
    with pytest.raises(DesignError, match="no sampled weight") as err:
        d.poststratify("g", {"a": 10.0, "b": 20.0, "c": 5.0})
    assert err.value.column == "g"
    with pytest.raises(DesignError, match="absent from the population"):
        d.poststratify("g", {"a": 10.0})
    with pytest.raises(DesignError, match="different population totals"):
        d.rake({"g": {"a": 10.0, "b": 20.0}, "stratum": {s: 1.0 for s in range(10)}})
    margins = {"g": {"a": 600.0, "b": 400.0}, "stratum": {s: 100.0 for s in range(10)}}
    with pytest.raises(DesignError, match="did not converge"):
        d.rake(margins, tol=1e-14, max_iter=1)
    assert d.rake(margins).weights.sum() == pytest.approx(1000.0)


def test_lonely_psu_rules_differ_and_fail_is_the_default(df):
    lone = df[~((df["stratum"] == 9) & (df["psu"] != 54))]
    with pytest.raises(DesignError, match="stratum 9 has only one PSU"):
        Design(lone, weights="w", strata="stratum", ids="psu").mean("y")
    ses = {
        rule: Design(lone, weights="w", strata="stratum", ids="psu", lonely_psu=rule).mean("y")["se"].iloc[0]
        for rule in ("remove", "certainty", "adjust", "average")
    }
    assert ses["remove"] == ses["certainty"] < ses["average"]
    assert ses["adjust"] != ses["remove"]


# -- options of the list-of-analyses engine: df, qrule, select_multiple, ratio missing values ----


def test_df_option_chooses_the_quantile_of_every_interval(df):
    d = Design(df, weights="w", strata="stratum", ids="psu")
    z = d.mean("y", by="g")
    assert z.equals(d.mean("y", by="g", df="z"))  # R's confint default
    design = d.mean("y", by="g", df="design")
    half = (design["ci_high"] - design["estimate"]) / design["se"]
    assert half.to_numpy() == pytest.approx(stats.t.ppf(0.975, d.degf))  # 60 PSUs − 10 strata
    five = d.total("y", df=5)
    assert ((five["ci_high"] - five["estimate"]) / five["se"]).iloc[0] == pytest.approx(stats.t.ppf(0.975, 5))
    # a domain inside few PSUs gets a wide interval from its own df
    one = df.assign(small=np.where(df["psu"] < 2, "few", "many"))
    dom = Design(one, weights="w", strata="stratum", ids="psu").mean("y", by="small", df="domain")
    assert list(dom["df"]) == [1, 48]  # PSUs 0–1 in one stratum; 58 PSUs in 10 strata
    assert ((dom["ci_high"] - dom["estimate"]) / dom["se"]).to_numpy() == pytest.approx(
        stats.t.ppf(0.975, [1, 48])
    )
    for bad in ("t", -1, True):
        with pytest.raises(DesignError, match="unknown df"):
            d.mean("y", df=bad)


def test_school_quantile_rule_takes_the_midpoint_on_an_exact_tie():
    d = Design(pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0]}))
    assert d.quantile("y", q=0.5, qrule="school")["estimate"].iloc[0] == 2.5
    assert d.quantile("y", q=0.5)["estimate"].iloc[0] == 2.0  # R's qrule="math"
    with pytest.raises(DesignError, match="unknown qrule"):
        d.quantile("y", qrule="hf7")


def test_the_school_reference_cases_include_exact_ties():
    """The R reference cases for qrule='school' would not test the rule if no cumulative share hit
    q exactly; on apisrs (equal weights, 200 rows) some do, and there the rules differ."""
    from test_survey_reference import design as reference_design

    d = reference_design("srs")
    school = d.quantile("api00", q=[0.1, 0.25, 0.5, 0.75], qrule="school")
    math = d.quantile("api00", q=[0.1, 0.25, 0.5, 0.75])
    assert (school["estimate"] != math["estimate"]).any()


def test_select_multiple_shares_are_among_the_question_respondents(df):
    asked = df["psu"] % 3 != 0
    opts = pd.DataFrame(
        {
            f"q/{k}": np.where(asked, (df["y"] > c).astype(float), np.nan)
            for k, c in {"a": 9.0, "b": 11.0}.items()
        }
    )
    data = pd.concat([df, opts], axis=1).assign(one=1.0)
    d = Design(data, weights="w", strata="stratum", ids="psu")
    out = d.proportion("q", options=["q/a", "q/b"], by="g", ci="wald")
    assert list(out["level"]) == ["a", "b", "a", "b"]
    inside = d.mean(["q/a", "q/b"], by="g", na_rm=True)  # the same domain estimate
    np.testing.assert_allclose(out["estimate"], inside["estimate"], rtol=1e-12)
    np.testing.assert_allclose(out["se"], inside["se"], rtol=1e-12)
    named = d.proportion("q", options={"q/a": "above 9"}, respondents=asked.to_numpy())
    assert named["level"].tolist() == ["above 9"] and named["n"].iloc[0] == asked.sum()
    with pytest.raises(DesignError, match="0 or 1") as err:
        Design(data.assign(**{"q/a": data["q/a"] * 2}), weights="w").proportion("q", options=["q/a"])
    assert err.value.column == "q/a"
    with pytest.raises(DesignError, match="missing values among the question's respondents"):
        d.proportion("q", options=["q/a"], respondents=np.ones(len(df), dtype=bool))


def test_ratio_missing_value_options_follow_analysistools():
    """analysistools' own example: 1 child attending of 5 (NA attending counted as 0, the household
    without children left out); without NA → 0 the household with 2 children drops out: 1 of 3."""
    school = pd.DataFrame({"num_children": [3, 0, 2, np.nan], "num_attending": [1, np.nan, np.nan, np.nan]})
    d = Design(school)
    both = d.ratio(
        "num_attending", "num_children", na_rm=True, numerator_na_to_0=True, filter_denominator_0=True
    )
    assert both["estimate"].iloc[0] == pytest.approx(0.2) and both["n"].iloc[0] == 2
    kept = d.ratio("num_attending", "num_children", na_rm=True, numerator_na_to_0=True)
    assert kept["estimate"].iloc[0] == pytest.approx(0.2) and kept["n"].iloc[0] == 3
    plain = d.ratio("num_attending", "num_children", na_rm=True)
    assert plain["estimate"].iloc[0] == pytest.approx(1 / 3) and plain["n"].iloc[0] == 1


# -- change between waves ------------------------------------------------------------------------


def two_waves(df, fresh: bool) -> pd.DataFrame:
    """Two waves of the stratified sample: the second revisits the same PSUs (y moves by a PSU
    effect plus noise), or draws fresh PSUs (new ids, each wave its own strata)."""
    rng = np.random.default_rng(8)
    later = df.assign(y=df["y"] + 1 + rng.normal(0, 0.5, len(df)), wave=2013)
    if fresh:
        later = later.assign(psu=later["psu"] + 1000, stratum=later["stratum"] + 100)
    return pd.concat([df.assign(wave=2012), later], ignore_index=True)


def test_change_in_revisited_psus_carries_their_covariance(df):
    d = Design(two_waves(df, fresh=False), weights="w", strata="stratum", ids="psu")
    change = d.compare("y", by="wave", domains="g")
    per_wave = d.mean("y", by=["g", "wave"]).set_index(["g", "wave"])
    naive = np.sqrt(per_wave["se"].xs(2012, level="wave") ** 2 + per_wave["se"].xs(2013, level="wave") ** 2)
    expected = per_wave["estimate"].xs(2013, level="wave") - per_wave["estimate"].xs(2012, level="wave")
    np.testing.assert_allclose(change["estimate"], expected.to_numpy(), rtol=1e-12)
    assert (change["se"].to_numpy() < 0.5 * naive.to_numpy()).all()  # the PSU effects cancel


def test_change_between_independent_samples_adds_the_variances(df):
    d = Design(two_waves(df, fresh=True), weights="w", strata="stratum", ids="psu")
    change = d.compare("y", by="wave", statistic="total")
    per_wave = d.total("y", by="wave")
    assert change["se"].iloc[0] == pytest.approx(np.sqrt((per_wave["se"] ** 2).sum()), rel=1e-12)
    assert change["df"].iloc[0] == 120 - 20


def test_compare_refuses_unclear_waves(df):
    d = Design(two_waves(df, fresh=False), weights="w", strata="stratum", ids="psu")
    with pytest.raises(DesignError, match="no wave 2014") as err:
        d.compare("y", by="wave", first=2012, second=2014)
    assert err.value.column == "wave"
    with pytest.raises(DesignError, match="unknown statistic"):
        d.compare("y", statistic="median")
    three = Design(
        pd.concat([two_waves(df, False), df.assign(wave=2014)], ignore_index=True),
        weights="w",
        strata="stratum",
        ids="psu",
    )
    with pytest.raises(DesignError, match="say which two"):
        three.compare("y")
    assert three.compare("y", first=2012, second=2014)["n"].iloc[0] == 2 * len(df)


def test_calibrated_variance_is_the_same_to_the_last_bit_however_the_variables_are_grouped(monkeypatch):
    """The calibrated variance works on groups of variables, in threads: any grouping gives the same
    bits (groups of two or three in two threads against all at once in one), over domains or not."""
    from analysis.survey import variance

    rng = np.random.default_rng(7)
    n = 600
    df = pd.DataFrame(
        {
            "stratum": rng.choice(["a", "b", "c"], n),
            "psu": rng.integers(0, 8, n),
            "w": rng.uniform(1, 30, n),
            "sex": rng.choice(["f", "m"], n),
            "age": rng.choice(["young", "old"], n),
            "g": rng.choice(["x", "y", "z", "q"], n),
            **{f"y{j}": rng.normal(size=n) for j in range(5)},
        }
    )
    df["hh"] = df["psu"].astype(str) + "-" + (np.arange(n) // 3).astype(str)
    df["psu"] = df["stratum"] + df["psu"].astype(str)
    df["n_psu"], df["n_hh"] = 40, 200
    raked = (
        Design(
            df, weights="w", strata="stratum", ids=["psu", "hh"], fpc=["n_psu", "n_hh"], lonely_psu="adjust"
        )
        .poststratify("age", {"young": 9000.0, "old": 6000.0})
        .rake({"sex": {"f": 7600.0, "m": 7400.0}, "age": {"young": 9000.0, "old": 6000.0}})
    )
    variables = [f"y{j}" for j in range(5)]
    for by in ("g", None):
        monkeypatch.setattr(variance, "THREADS", 1)
        monkeypatch.setattr(variance, "CHUNK_CELLS", 1 << 24)
        at_once = raked.mean(variables, by=by)
        monkeypatch.setattr(variance, "THREADS", 2)
        monkeypatch.setattr(variance, "CHUNK_CELLS", 1)
        in_groups = raked.mean(variables, by=by)
        assert at_once["se"].gt(0).all()
        assert np.array_equal(at_once["se"].to_numpy(), in_groups["se"].to_numpy())


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(-3, 3), min_size=0, max_size=40),
    st.sampled_from(["sorted", "reversed", "as drawn"]),
    st.sampled_from([np.int64, np.float64, np.uint8]),
)
def test_sorted_ids_are_coded_as_hashing_codes_them(values, order, dtype):
    """Codes from the runs of a sorted column are pd.factorize's codes (order of first appearance)."""
    from analysis.survey.groups import codes_of, combine

    a = np.array(values, dtype=np.int64)
    a = {"sorted": np.sort(a), "reversed": np.sort(a)[::-1], "as drawn": a}[order]
    a = (a + 3).astype(dtype)
    df = pd.DataFrame({"x": a, "y": a[::-1].copy()})
    expected = pd.factorize(a, sort=False)[0]
    np.testing.assert_array_equal(codes_of(df, ["x"], "stratum"), expected)
    pairs = pd.factorize(pd.Series(list(zip(a, a[::-1], strict=True)), dtype=object), sort=False)[0]
    np.testing.assert_array_equal(codes_of(df, ["x", "y"], "stratum"), pairs)
    np.testing.assert_array_equal(combine(expected, expected), expected)


def _two_strata(rng: np.random.Generator, n: int, **columns) -> pd.DataFrame:
    """n rows in strata a and b, PSUs 0–5 (ids repeat across strata), weights 1–30, plus ``columns``."""
    return pd.DataFrame(
        {
            "stratum": rng.choice(["a", "b"], n),
            "psu": rng.integers(0, 6, n),
            "w": rng.uniform(1, 30, n),
            **columns,
        }
    )


@pytest.mark.parametrize("kind", ["mean", "total", "ratio", "replicate mean"])
def test_many_variables_are_estimated_in_parts_with_the_same_bits(monkeypatch, kind):
    """Variables beyond ``MAX_COLUMNS`` are estimated in parts (bounded memory); the frame is the one
    estimating them all at once gives, to the last bit, domains and order included."""
    from analysis.survey import estimators

    rng = np.random.default_rng(11)
    n = 500
    df = _two_strata(
        rng,
        n,
        g=rng.choice(["x", "y", "z"], n),
        d=rng.uniform(1, 3, n),
        **{f"y{j}": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)) for j in range(7)},
    )
    df["psu"] = df["stratum"] + df["psu"].astype(str)
    design = Design(df, weights="w", strata="stratum", ids="psu").rake({"g": {"x": 5e3, "y": 4e3, "z": 3e3}})
    if kind == "replicate mean":
        design = design.replicate("bootstrap", replicates=20, seed=3)
    variables = [f"y{j}" for j in range(7)]

    def run():
        if kind == "ratio":
            return design.ratio(variables, "d", by="g", na_rm=True)
        return getattr(design, kind.split()[-1])(variables, by="g", na_rm=True)

    whole = run()
    monkeypatch.setattr(estimators, "MAX_COLUMNS", 3)  # parts of 3, 2 and 2 variables
    parts = run()
    assert len(whole) == 21 and whole["se"].gt(0).all()
    pd.testing.assert_frame_equal(whole, parts, check_exact=True)


def test_raking_to_one_margin_is_post_stratifying_to_it():
    """One margin: raking gives the post-stratified weights (it used to fail when the margin's cells were
    not met in sorted order). The SEs may differ, as in R, whose ``rake`` keeps its own variance terms."""
    rng = np.random.default_rng(5)
    n = 300
    df = _two_strata(rng, n, g=rng.choice(["z", "x", "y"], n), y=rng.normal(size=n))
    df.loc[0, "g"] = "z"  # the first row's cell is not the first in sorted order
    population = {"x": 5e3, "y": 4e3, "z": 3e3}
    base = Design(df, weights="w", strata="stratum", ids="psu", nest=True)
    raked, post = base.rake({"g": population}), base.poststratify("g", population)
    np.testing.assert_allclose(raked.weights, post.weights, rtol=1e-12)
    totals = pd.Series(raked.weights).groupby(df["g"].to_numpy()).sum()
    np.testing.assert_allclose(totals[list(population)], list(population.values()), rtol=1e-10)
    assert raked.mean("y")["estimate"].iloc[0] == pytest.approx(post.mean("y")["estimate"].iloc[0], rel=1e-12)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(samples())
def test_leaving_out_the_design_effect_changes_nothing_else(df):
    d = Design(df.assign(one=1.0), weights="w", strata="stratum", ids="psu")
    for method, args in (("mean", ("y",)), ("total", ("y",)), ("ratio", ("y", "one"))):
        full = getattr(d, method)(*args, by="g")
        lean = getattr(d, method)(*args, by="g", deff=False)
        assert lean["deff"].isna().all() and full["deff"].notna().any()
        pd.testing.assert_frame_equal(full.drop(columns="deff"), lean.drop(columns="deff"), check_exact=True)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.floats(min_value=-5, max_value=1e6),
            st.sampled_from([0.0, 0.5, 1.0, np.inf, -np.inf, np.nan]),
        ),
        min_size=1,
        max_size=8,
    ),
    st.floats(min_value=0.01, max_value=0.999),
)
def test_critical_values_are_scipy_stats_quantiles(df, level):
    """The interval's quantile is scipy.stats' t.ppf (normal where df is infinite, NaN where df ≤ 0 or
    missing), to the last bit, computed without importing scipy.stats."""
    from analysis.survey.intervals import critical

    df = np.array(df)
    p = 1 - (1 - level) / 2
    with np.errstate(invalid="ignore"):
        expected = np.where(np.isinf(df), stats.norm.ppf(p), stats.t.ppf(p, np.where(np.isinf(df), 1.0, df)))
    np.testing.assert_array_equal(critical(level, df), expected)


def test_the_normal_functions_used_are_scipy_stats_norm():
    from scipy import special

    x = np.array([-np.inf, -40.0, -1.5, -0.0, 0.0, 1e-300, 2.5, 40.0, np.inf, np.nan])
    np.testing.assert_array_equal(special.ndtr(x), stats.norm.cdf(x))
    np.testing.assert_array_equal(special.ndtr(-x), stats.norm.sf(x))
    q = np.array([1e-12, 0.025, 0.5, 0.9, 0.975, 1 - 1e-12])
    np.testing.assert_array_equal(special.ndtri(q), stats.norm.ppf(q))
