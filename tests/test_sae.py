"""The 村居 small-area estimates: covariates from the frame, GVF, back-transform, bootstrap MSE,
benchmarking and the fallback to direct estimates (R agreement of the model itself:
tests/test_sae_reference.py; accuracy over simulated samples: tests/test_sae_coverage.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from analysis import sae
from analysis.errors import AnalysisError
from analysis.indicators import load_needs
from analysis.sae import FitError

ROOT = Path(__file__).resolve().parents[1]
FRAME = pd.read_csv(ROOT / "survey" / "frame" / "population_frame.csv")
CUNJU = pd.read_csv(ROOT / "survey" / "frame" / "cunju.csv")
DEFINITIONS = load_needs()


def tiny_frame() -> pd.DataFrame:
    rows = [("a", "male", "0-14", "local", 30), ("a", "female", "15-24", "nonlocal", 10),
            ("a", "male", "60-69", "local", 20), ("a", "female", "80+", "nonlocal", 40),
            ("b", "male", "0-14", "nonlocal", 15), ("b", "female", "60-69", "local", 5)]
    return pd.DataFrame(rows, columns=["cunju", "sex", "age_band", "registration", "population"])


def test_frame_covariates_describe_the_target_group():
    old = sae.frame_covariates(tiny_frame(), {"age_min": 60})
    assert old.loc["a", "nonlocal_share"] == pytest.approx(40 / 60)
    assert old.loc["a", "mean_age"] == pytest.approx((20 * 65 + 40 * 85) / 60)  # 80+ spread over 80-89
    assert old.loc["a", "target_share"] == pytest.approx(60 / 100)
    assert old.loc["b", "male_share"] == 0
    # ages 6-24: 9 of the 15 years of band 0-14 (persons spread evenly), all of 15-24
    young = sae.frame_covariates(tiny_frame(), {"age_min": 6, "age_max": 24})
    assert young.loc["a", "nonlocal_share"] == pytest.approx(10 / (30 * 9 / 15 + 10))
    assert young.loc["a", "mean_age"] == pytest.approx((18 * 10.5 + 10 * 20) / 28)
    everyone = sae.frame_covariates(FRAME, {}, CUNJU)
    assert len(everyone) == 22 and everyone["target_share"].eq(1).all()
    residents = FRAME.groupby("cunju")["population"].sum()
    np.testing.assert_allclose(everyone["household_size"], residents / CUNJU.set_index("cunju")["households"])


def test_pooled_deff_is_the_ratio_of_summed_variances():
    p, n = np.array([0.2, 0.5, 0.0]), np.array([10, 20, 5])
    se = np.sqrt(np.array([1.5, 2.0, 0.0]) * p * (1 - p) / n)
    srs = p * (1 - p) / n
    assert sae.pooled_deff(p, se, n) == pytest.approx((1.5 * srs[0] + 2.0 * srs[1]) / srs.sum())


@pytest.mark.parametrize(("mean", "var"), [(0.3, 0.01), (0.05, 0.04), (1.5, 0.09), (-0.2, 0.02), (0.9, 0.3)])
def test_arcsine_back_transform_is_the_expected_proportion(mean, var):
    sd = np.sqrt(var)
    expected = integrate.quad(lambda x: np.sin(np.clip(x, 0, np.pi / 2)) ** 2 * stats.norm.pdf(x, mean, sd),
                              mean - 12 * sd, mean + 12 * sd, points=[0, np.pi / 2], limit=200)[0]
    assert sae.arcsine_mean(mean, var) == pytest.approx(expected, abs=1e-12)


def test_arcsine_back_transform_without_variance_is_naive():
    theta = np.array([-0.1, 0.4, 2.0])
    np.testing.assert_allclose(sae.arcsine_mean(theta, 0.0), [0.0, np.sin(0.4) ** 2, 1.0])


def test_bootstrap_mse_matches_the_analytic_mse_when_areas_are_many():
    """With 300 areas σ²ᵤ and β are nearly known: the bootstrap MSE of the back-transformed EBLUP is
    then close to g₁ carried to the proportion scale (delta method), (sin 2θ)² σ²ᵤψ/(σ²ᵤ + ψ)."""
    rng = np.random.default_rng(5)
    m = 300
    X = np.column_stack([np.ones(m), rng.uniform(0, 1, m)])
    psi = rng.uniform(0.002, 0.02, m)
    beta, refvar = np.array([0.5, 0.4]), 0.004
    mse, dropped = sae.bootstrap_mse(X, np.ones(m, bool), psi, beta, refvar, "REML", 800,
                                     np.random.default_rng(1))
    theta = X @ beta
    analytic = np.sin(2 * theta) ** 2 * refvar * psi / (refvar + psi)
    assert dropped == 0
    assert np.median(mse / analytic) == pytest.approx(1, abs=0.05)


def synthetic_estimates(seed: int = 3, outlier: str | None = None) -> pd.DataFrame:
    """Direct estimates by 村居 as stage 03 gives them, drawn from a known area-level model."""
    rng = np.random.default_rng(seed)
    rows = []
    for team, spec in DEFINITIONS["teams"].items():
        x = sae.frame_covariates(FRAME, spec.get("universe"))
        n = rng.integers(15, 120, len(x))
        theta = 0.6 + 0.5 * (x["nonlocal_share"].to_numpy() - 0.5) + rng.normal(0, 0.05, len(x))
        y = np.clip(theta + rng.normal(0, np.sqrt(1.2 / (4 * n))), 0, np.pi / 2)
        p = np.sin(y) ** 2
        if outlier is not None:
            p[x.index.get_loc(outlier)] = 0.99
        se = np.sqrt(1.2 * p * (1 - p) / n)
        size = rng.integers(500, 5000, len(x)).astype(float)
        base = {"analysis_type": "prop", "team": team, "variable": f"in_need_{team}", "value": "1",
                "universe": "persons", "unit": spec["unit"]}
        for c, pc, sc, nc, wc in zip(x.index, p, se, n, size, strict=True):
            rows.append({**base, "group": "cunju", "group_value": c, "estimate": pc, "se": sc,
                         "ci_low": pc - 2 * sc, "ci_high": pc + 2 * sc, "n": nc, "n_weighted": wc})
        overall = float(np.sum(size * p) / size.sum())
        rows.append({**base, "group": "all", "group_value": "all", "estimate": overall, "se": 0.01,
                     "ci_low": overall - 0.02, "ci_high": overall + 0.02, "n": int(n.sum()),
                     "n_weighted": size.sum()})
    return pd.DataFrame(rows)


def test_model_rows_add_up_to_the_direct_all_leliu_estimate():
    estimates = synthetic_estimates()
    fit = sae.fit_cunju(estimates, FRAME, DEFINITIONS, replicates=100)
    assert (fit.models["status"] == "fitted").all()
    assert (fit.rows["method"] == "fh").mean() > 0.95  # drawn from the model: |residual| > 3 is rare
    overall = estimates[estimates["group"] == "all"].set_index("team")["estimate"]
    for team, rows in fit.rows.groupby("team"):
        weighted = np.sum(rows["n_weighted"] * rows["estimate"]) / rows["n_weighted"].sum()
        assert weighted == pytest.approx(overall[team], abs=1e-12)
    rows = fit.rows[fit.rows["method"] == "fh"]
    assert ((rows["ci_low"] <= rows["estimate"]) & (rows["estimate"] <= rows["ci_high"])).all()
    assert ((rows["ci_low"] >= 0) & (rows["ci_high"] <= 1)).all()
    areas = fit.areas[fit.areas["method"] == "fh"]
    assert ((areas["gamma"] >= 0) & (areas["gamma"] < 1)).all()
    # the model is more precise than the GVF-smoothed direct estimate it shrinks
    direct_se = np.sqrt(areas["psi"]) * np.abs(np.sin(2 * np.arcsin(np.sqrt(areas["direct"]))))
    assert (areas["model_se"] < direct_se).mean() > 0.9


def test_model_estimates_are_reproducible():
    estimates = synthetic_estimates()
    first = sae.cunju_estimates(estimates, FRAME, definitions=DEFINITIONS, replicates=50)
    second = sae.cunju_estimates(estimates, FRAME, definitions=DEFINITIONS, replicates=50)
    pd.testing.assert_frame_equal(first, second)


def test_a_cunju_the_model_does_not_fit_keeps_its_direct_estimate():
    estimates = synthetic_estimates(outlier="c07")
    fit = sae.fit_cunju(estimates, FRAME, DEFINITIONS, replicates=50)
    c07 = fit.rows[fit.rows["group_value"] == "c07"]
    assert (c07["method"] == "direct").all()
    assert c07["note"].str.contains("does not fit").all()
    direct = estimates[estimates["group_value"] == "c07"].set_index("team")
    np.testing.assert_allclose(c07.set_index("team")["estimate"], direct.loc[c07["team"], "estimate"])
    others = fit.rows[fit.rows["group_value"] != "c07"]
    assert (others["method"] == "fh").mean() > 0.95


def test_too_few_cunju_give_direct_estimates_with_a_note():
    estimates = synthetic_estimates()
    eight = [f"c{i:02d}" for i in range(1, 9)]
    few = estimates[(estimates["group"] == "all") | estimates["group_value"].isin(eight)]
    rows = sae.cunju_estimates(few, FRAME, definitions=DEFINITIONS, replicates=20)
    assert (rows["method"] == "direct").all()
    assert rows["note"].str.contains("model not fitted: 8 村居").all()


def test_missing_all_leliu_row_or_unknown_covariate_is_a_clear_error():
    estimates = synthetic_estimates()
    with pytest.raises(AnalysisError, match="no all-Leliu row"):
        sae.fit_cunju(estimates[estimates["group"] != "all"], FRAME, DEFINITIONS)
    with pytest.raises(AnalysisError, match="unknown covariates"):
        sae.fit_cunju(estimates, FRAME, DEFINITIONS, covariates=("rainfall",))


def test_wide_intervals_counts_shown_cells():
    rows = pd.DataFrame({"estimate": [0.5, 0.5, np.nan, 0.4], "ci_low": [0.4, 0.1, np.nan, 0.0],
                         "ci_high": [0.6, 0.9, np.nan, 0.9], "suppressed": [False, False, True, True]})
    assert sae.wide_intervals(rows) == (1, 2)


@pytest.mark.parametrize(("args", "message"), [
    (([1.0, 2.0, 3.0], [0.1, 0.1], np.ones((3, 1))), "one entry per area"),
    (([1.0, 2.0, 3.0], [0.1, 0.0, 0.1], np.ones((3, 1))), "must be positive"),
    (([1.0, np.nan, 3.0], [0.1, 0.1, 0.1], np.ones((3, 1))), "missing or infinite"),
    (([1.0, 2.0, 3.0], [0.1, 0.1, 0.1], np.ones((3, 2))), "full column rank"),
])
def test_bad_input_to_the_model_is_a_clear_error(args, message):
    with pytest.raises(FitError, match=message):
        sae.fay_herriot(*args)
    with pytest.raises(FitError, match="not one of"):
        sae.fay_herriot([1.0, 2.0, 3.0], [0.1, 0.1, 0.1], np.ones((3, 1)), method="EB")


def test_results_gain_model_rows_and_the_model_row_is_preferred():
    estimates = synthetic_estimates(outlier="c07")
    rows = sae.cunju_estimates(estimates, FRAME, definitions=DEFINITIONS, replicates=20)
    results = estimates.assign(suppressed=False)
    combined = sae.with_model_rows(results, rows)
    assert list(combined.columns) == [*results.columns, "method"]
    assert (combined["method"] == "direct").sum() == len(results)
    assert (combined["method"] == "fh").sum() == (rows["method"] == "fh").sum()
    chosen = sae.preferred(combined)
    cunju = chosen[chosen["group"] == "cunju"]
    assert not cunju.duplicated(["team", "group_value"]).any() and len(cunju) == 4 * 22
    assert set(cunju.loc[cunju["group_value"] == "c07", "method"]) == {"direct"}
    assert (chosen["group"] == "all").sum() == 4


def test_a_bootstrap_whose_fits_all_fail_says_so_without_a_warning():
    X = np.column_stack([np.ones(12), np.arange(12.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mse, dropped = sae.bootstrap_mse(X, np.ones(12, bool), np.full(12, 0.01), np.array([0.5, 0.01]),
                                         0.001, "REML", 5, np.random.default_rng(0), max_iter=1)
    assert dropped == 5 and np.isnan(mse).all()
