"""Preston's multistage rescaled bootstrap agrees with R ``survey``'s ``mrbbootstrap``.

R's replicates are random, so two things are checked against ``tests/reference/mrb_reference.json``
(written by ``tests/reference/make_mrb_reference.R``; the tests need no R):

- exactly: given the half-samples R drew, the same replicate factors (to 1e-12) and the same totals
  and SEs on that replicate design (to 1e-10 relative; R's svytotal with survey.drop.replicates off);
- in expectation: over 5,000 replicates our bootstrap variance of each total lies within 4 Monte
  Carlo standard errors of R's linearised variance with fpc at both stages (which the bootstrap
  estimates without bias) and of R's own bootstrap variance from 5,000 replicates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DesignError
from analysis.survey import Design, mrb
from analysis.survey.variance import svr_var

HERE = Path(__file__).parent / "reference"
REFERENCE = json.loads((HERE / "mrb_reference.json").read_text(encoding="utf-8"))
FILES = {"strat2": "mrb_strat2.csv", "apiclus2": "apiclus2.csv", "mu284": "mu284.csv"}


def reference_design(name: str) -> tuple[pd.DataFrame, Design, dict]:
    case = REFERENCE["designs"][name]
    df = pd.read_csv(HERE / "data" / FILES[name]).assign(one=1.0)
    design = Design(df, strata=case["strata"], ids=case["ids"], fpc=case["fpc"], lonely_psu="certainty")
    return df, design, case


@pytest.mark.parametrize("name", list(FILES))
def test_same_half_samples_give_rs_replicate_factors_totals_and_ses(name):
    df, design, case = reference_design(name)
    recorded = case["recorded"]
    groups, levels = mrb.levels(design)
    kept_rows = [np.array(recorded["kept_stage1"]).T, np.array(recorded["kept_stage2"]).T]
    kept = [rows[stage.unit_first].astype(bool) for rows, stage in zip(kept_rows, design.stages)]
    factors = mrb.factors(levels, kept)[groups]
    np.testing.assert_allclose(factors, np.array(recorded["factors"]).T, rtol=0, atol=1e-12)

    # R's svytotal on that replicate design (negative replicate weights allowed, as R)
    y = df[case["variables"]].to_numpy(dtype=float)
    total = design.weights @ y
    thetas = (design.weights[:, None] * factors).T @ y
    se = np.sqrt(svr_var(thetas, total, recorded["scale"], np.array(recorded["rscales"]), False))
    np.testing.assert_allclose(total, recorded["total"], rtol=1e-10)
    np.testing.assert_allclose(se, recorded["se"], rtol=1e-10)


@pytest.mark.parametrize("name", list(FILES))
def test_bootstrap_variance_is_unbiased_for_the_multistage_variance_with_fpc(name):
    df, design, case = reference_design(name)
    expected = case["expectation"]
    np.testing.assert_allclose(design.total(case["variables"])["se"], expected["se_linear"], rtol=1e-9)
    rep = design.replicate("mrbbootstrap", replicates=5000, seed=3)
    thetas = rep.replicate_totals(df[case["variables"]].to_numpy(dtype=float))
    squares = (thetas - thetas.mean(axis=0)) ** 2
    variance = squares.sum(axis=0) / (len(thetas) - 1)
    mc_se = squares.std(axis=0, ddof=1) / np.sqrt(len(thetas))
    np.testing.assert_allclose(variance, rep.total(case["variables"])["se"] ** 2, rtol=1e-12)
    linear = np.array(expected["variance_linear"])
    assert (np.abs(variance - linear) < 4 * mc_se).all(), (variance / linear, mc_se / linear)
    r_boot, r_mc_se = np.array(expected["variance_mrb"]), np.array(expected["variance_mrb_mc_se"])
    assert (np.abs(variance - r_boot) < 4 * np.hypot(mc_se, r_mc_se)).all(), variance / r_boot


def test_each_stratum_keeps_half_its_units_in_every_replicate():
    unit_stratum = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3])
    kept = mrb.half_samples(unit_stratum, 200, np.random.default_rng(1))
    per_stratum = np.stack([kept[unit_stratum == h].sum(axis=0) for h in range(4)])
    assert (per_stratum == np.array([1, 1, 3, 0])[:, None]).all()
    # every unit of a stratum is kept equally often (a simple random half-sample)
    assert abs(kept[unit_stratum == 2].mean() - 3 / 7) < 0.05


def test_replicates_are_reproducible_from_the_seed():
    _, design, _ = reference_design("strat2")
    a = design.replicate("mrbbootstrap", replicates=40, seed=9).replicate_weights()
    b = design.replicate("mrbbootstrap", replicates=40, seed=9).replicate_weights()
    c = design.replicate("mrbbootstrap", replicates=40, seed=10).replicate_weights()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_a_stratum_sampled_whole_adds_only_its_later_stages():
    # one stratum, both PSUs taken (N = n = 2): no first-stage variance, the households still vary
    df = pd.DataFrame(
        {"psu": ["a"] * 4 + ["b"] * 4, "hh": range(8), "N1": 2, "N2": 10, "y": [1.0, 2, 3, 4, 5, 6, 7, 8]}
    )
    design = Design(df, ids=["psu", "hh"], fpc=["N1", "N2"])
    rep = design.replicate("mrbbootstrap", replicates=4000, seed=2)
    # stage-2 variance only: Σ_PSU N2²(1 − f2) s²/n2
    expected = sum(10**2 * (1 - 4 / 10) * np.var(v, ddof=1) / 4 for v in ([1, 2, 3, 4], [5, 6, 7, 8]))
    assert rep.total("y")["se"].iloc[0] ** 2 == pytest.approx(expected, rel=0.08)
    assert design.total("y")["se"].iloc[0] ** 2 == pytest.approx(expected, rel=1e-12)


def test_a_lonely_psu_fails_unless_a_rule_is_chosen():
    df = pd.DataFrame({"s": ["a", "a", "b"], "psu": [1, 2, 3], "N": [5, 5, 4], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DesignError, match="only one PSU"):
        Design(df, strata="s", ids="psu", fpc="N").replicate("mrbbootstrap", replicates=10, seed=1)
    rep = Design(df, strata="s", ids="psu", fpc="N", lonely_psu="certainty").replicate(
        "mrbbootstrap", replicates=10, seed=1
    )
    assert (rep.replicate_weights()[2] == rep.replicate_weights()[2, 0]).all()  # its PSU never moves


class _CoarseKeys:
    """A generator whose uniform keys take three values only, so that equal keys are common."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def random(self, shape):
        return self.rng.integers(0, 3, shape) / 4


@pytest.mark.parametrize("seed", range(12))
def test_half_samples_keep_the_smallest_keys_of_each_stratum_as_one_stable_sort(seed):
    """Each stratum keeps the units with its ⌊n/2⌋ smallest keys, of equal keys the earlier unit: the same
    units as a stable sort of each replicate's keys, whether strata are of similar size (cut-off keys from a
    table of strata) or not (sorted), with exact ties and strata in any order."""
    rng = np.random.default_rng(seed)
    strata = np.sort(rng.integers(0, 30, 400)) if seed % 3 else np.r_[np.zeros(300, int), np.arange(1, 40)]
    if seed % 2:
        rng.shuffle(strata)
    for keys in (_CoarseKeys, np.random.default_rng):
        draws = keys(seed).random((8, len(strata)))
        order = np.argsort(strata, kind="stable")
        grouped = strata[order]
        n = np.bincount(strata)
        place = np.arange(len(strata)) - np.concatenate([[0], np.cumsum(n)[:-1]])[grouped]
        expected = np.zeros((len(strata), 8), dtype=bool)
        for r in range(8):
            sorted_units = order[np.argsort(grouped + draws[r], kind="stable")]
            expected[sorted_units[place < (n // 2)[grouped]], r] = True
        assert np.array_equal(mrb.half_samples(strata, 8, keys(seed)), expected)
