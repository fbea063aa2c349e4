"""analysis.survey reproduces R survey 4.1-1 (values in tests/reference/survey_reference.json).

The JSON is written by tests/reference/make_reference.R from R's own example data (copied to
tests/reference/data/); these tests need no R. Estimates and SEs agree to 1e-9 relative for Taylor,
calibrated and replicate designs. Exceptions, each for a stated reason:
- proportion intervals by the logit method: R fits a quasi-binomial GLM by IRLS, whose convergence
  (deviance change < 1e-8) limits the agreement of the interval ends to about 1e-7 relative;
- quantile intervals map a t interval through a step function, so they either agree to 1e-9 or
  not at all; they are compared at 1e-9 like the rest.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DesignError
from analysis.survey import Design, ReplicateDesign

HERE = Path(__file__).parent / "reference"
REFERENCE = json.loads((HERE / "survey_reference.json").read_text())
POP = REFERENCE["meta"]["populations"]
REL = 1e-9


@cache
def load(name: str) -> pd.DataFrame:
    """Read one R example dataset with the column types and factor levels of schema.json."""
    schema = json.loads((HERE / "data" / "schema.json").read_text())["datasets"][name]
    text = [c["name"] for c in schema["columns"] if c["r_class"] == "character"]
    df = pd.read_csv(
        HERE / "data" / schema["file"], dtype={c: str for c in text}, keep_default_na=False, na_values=[""]
    )
    for c in schema["columns"]:
        if c["r_class"] == "factor":
            df[c["name"]] = pd.Categorical(df[c["name"]], categories=c["levels"])
    return derive(df) if name.startswith("api") else df


def derive(df: pd.DataFrame) -> pd.DataFrame:
    """The columns the R script adds to the api data sets: a select_multiple question "prog" asked
    where sch.wide is Yes (three 0/1 options, missing for the others), a ratio numerator skipped
    where ell > 30 and a denominator set to 0 where meals < 20."""
    answered = (df["sch.wide"] == "Yes").to_numpy()
    options = {"awards": df["awards"] == "Yes", "meals": df["meals"] > 50, "ell": df["ell"] > 20}
    extra = {f"prog/{k}": np.where(answered, v.astype(float), np.nan) for k, v in options.items()}
    extra["num_na"] = np.where(df["ell"] > 30, np.nan, df["api.stu"])
    extra["den0"] = np.where(df["meals"] < 20, 0.0, df["enroll"])
    return df.assign(answered=answered, **extra)


def lone_data() -> pd.DataFrame:
    """apiclus1 with districts split into strata a, b and a single-district stratum z (as the R script)."""
    df = load("apiclus1").copy()
    dn = df["dnum"]
    med = np.median(np.unique(dn))
    df["grp"] = np.where(dn == dn.max(), "z", np.where(dn < med, "a", "b"))
    return df


def waves(name: str) -> pd.DataFrame:
    """The same schools in two waves, stacked (as the R script): y = api99 in 1999, api00 in 2000;
    band = y in (−∞, 600], (600, 750], (750, ∞)."""
    df = load(name)
    both = pd.concat(
        [df.assign(wave=1999, y=df["api99"]), df.assign(wave=2000, y=df["api00"])], ignore_index=True
    )
    band = np.select([both["y"] <= 600, both["y"] <= 750], ["low", "mid"], "high")
    return both.assign(band=pd.Categorical(band, categories=["low", "mid", "high"]))


def repw_frame() -> tuple[pd.DataFrame, list[str]]:
    df = load("apiclus1").copy()
    cols = []
    for i, d in enumerate(sorted(df["dnum"].unique()), start=1):
        df[f"rep{i}"] = df["pw"] * (df["dnum"] != d) * 15 / 14
        cols.append(f"rep{i}")
    return df, cols


@cache
def design(name: str):
    pop_stype, pop_sw = POP["stype"], POP["sch.wide"]
    fpc = load("fpc").assign(frac=lambda d: d["nh"] / d["Nh"])
    builders = {
        "srs": lambda: Design(load("apisrs"), fpc="fpc"),
        "srs_nofpc": lambda: Design(load("apisrs"), weights="pw"),
        "strat": lambda: Design(load("apistrat"), strata="stype", weights="pw", fpc="fpc"),
        "clus1": lambda: Design(load("apiclus1"), ids="dnum", weights="pw", fpc="fpc"),
        "clus1_nofpc": lambda: Design(load("apiclus1"), ids="dnum", weights="pw"),
        "clus2": lambda: Design(load("apiclus2"), ids=["dnum", "snum"], fpc=["fpc1", "fpc2"]),
        "clus2_nofpc": lambda: Design(load("apiclus2"), ids=["dnum", "snum"], weights="pw"),
        "mu284": lambda: Design(load("mu284"), ids=["id1", "id2"], fpc=["n1", "n2"]),
        "nhanes": lambda: Design(
            load("nhanes"), ids="SDMVPSU", strata="SDMVSTRA", weights="WTMEC2YR", nest=True
        ),
        "fpc_pop": lambda: Design(fpc, ids="psuid", strata="stratid", weights="weight", fpc="Nh", nest=True),
        "fpc_frac": lambda: Design(fpc, ids="psuid", strata="stratid", fpc="frac", nest=True),
        "clus1_ps": lambda: design("clus1").poststratify("stype", pop_stype),
        "clus1_rake": lambda: design("clus1").rake({"stype": pop_stype, "sch.wide": pop_sw}, tol=1e-10),
        "clus1_cal": lambda: design("clus1").calibrate(
            {"stype": pop_stype, "api99": 3914069.0}
        ),  # = R's (Intercept) 6194, stypeH 755, stypeM 1018
        "clus1_rake1": lambda: design("clus1").rake({"stype": pop_stype}, tol=1e-10),
        "clus2_rake": lambda: design("clus2").rake({"stype": pop_stype, "sch.wide": pop_sw}, tol=1e-10),
        "clus2_ps_rake": lambda: (
            design("clus2")
            .poststratify("sch.wide", pop_sw)
            .rake({"stype": pop_stype, "sch.wide": pop_sw}, tol=1e-10)
        ),
        "clus2_ps_cal": lambda: (
            design("clus2")
            .poststratify("sch.wide", pop_sw)
            .calibrate({"stype": pop_stype, "api99": 3914069.0})
        ),
        "clus1_jk1_cal": lambda: design("clus1_cal").replicate("JK1"),
        "clus1_jk1": lambda: design("clus1").replicate("JK1"),
        "strat_jkn": lambda: design("strat").replicate("JKn"),
        "nhanes_jkn": lambda: design("nhanes").replicate("JKn"),
        "clus1_jk1_ps": lambda: design("clus1").poststratify("stype", pop_stype).replicate("JK1"),
        "clus1_jk1_rake": lambda: design("clus1_rake").replicate("JK1"),
        "scd_brr": lambda: ReplicateDesign(
            load("scd").assign(
                one=1.0,
                r1=[2, 0, 2, 0, 2, 0],
                r2=[2, 0, 0, 2, 0, 2],
                r3=[0, 2, 2, 0, 0, 2],
                r4=[0, 2, 0, 2, 2, 0],
            ),
            weights="one",
            repweights=["r1", "r2", "r3", "r4"],
            type="BRR",
            combined_weights=False,
        ),
        "clus1_user_mse": lambda: ReplicateDesign(
            repw_frame()[0],
            weights="pw",
            repweights=repw_frame()[1],
            type="other",
            scale=0.9,
            rscales=np.arange(0.5, 1.95, 0.1),
            mse=True,
        ),
        "clus1_user_jk1": lambda: ReplicateDesign(
            repw_frame()[0], weights="pw", repweights=repw_frame()[1], type="JK1", scale=14 / 15
        ),
    }
    builders.update(
        {
            "clus1_waves": lambda: Design(waves("apiclus1"), ids="dnum", weights="pw", fpc="fpc"),
            "strat_waves": lambda: Design(
                waves("apistrat"), ids="snum", strata="stype", weights="pw", fpc="fpc"
            ),
            "clus2_waves": lambda: Design(waves("apiclus2"), ids=["dnum", "snum"], fpc=["fpc1", "fpc2"]),
            "clus1_waves_jk1": lambda: design("clus1_waves").replicate("JK1"),
            "strat_waves_jkn": lambda: design("strat_waves").replicate("JKn"),
        }
    )
    for rule in ("remove", "adjust", "average", "certainty"):
        builders[f"lone_{rule}"] = lambda rule=rule: Design(
            lone_data(), ids="dnum", strata="grp", weights="pw", lonely_psu=rule
        )
        builders[f"lone_{rule}_jkn"] = lambda rule=rule: design(f"lone_{rule}").replicate("JKn")
    return builders[name]()


def _close(ours, theirs, rel, what, case, atol=0.0):
    ours = np.asarray(ours, dtype=float)
    theirs = np.array([np.nan if v is None else v for v in theirs], dtype=float)
    assert ours.shape == theirs.shape, f"{case}: {what} has {ours.shape} rows, R {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=rel, atol=atol, equal_nan=True, err_msg=f"{case}: {what}")


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=[c["id"] for c in REFERENCE["cases"]])
def test_matches_r_survey(case):
    d = design(case["design"])
    out = getattr(d, case["method"])(**case["args"])
    rows = case["rows"]
    if isinstance(rows, dict):  # jsonlite writes a data.frame column-wise
        rows = [dict(zip(rows, v)) for v in zip(*rows.values())]
    ref = {k: [r.get(k) for r in rows] for k in ("estimate", "se", "ci_low", "ci_high", "deff", "df")}
    # R's logit interval and its point estimate come from an IRLS fit (see module docstring)
    rel = 1e-6 if case["args"].get("ci") == "logit" else REL
    # a variance that is zero in exact arithmetic (e.g. a post-stratified share) is rounding noise
    # in both programs: compare it on an absolute scale of 1e-12 × the estimate
    zero = 1e-12 * max(1.0, np.nanmax(np.abs(np.array(ref["estimate"], dtype=float))))
    _close(out["estimate"], ref["estimate"], rel, "estimate", case["id"])
    _close(out["se"], ref["se"], REL, "se", case["id"], atol=zero)
    # where the variance is zero in exact arithmetic, intervals from it (beta) and deff = 0/0 are
    # noise in R too (R prints deff 1e32 there): compare them only where the variance is real
    real = np.array([np.nan if v is None else v for v in ref["se"]], dtype=float) > 1e3 * zero

    def pick(values):
        return np.asarray(values, dtype=object)[real]

    _close(pick(out["ci_low"]), pick(ref["ci_low"]), rel, "ci_low", case["id"], atol=zero)
    _close(pick(out["ci_high"]), pick(ref["ci_high"]), rel, "ci_high", case["id"], atol=zero)
    if any(v is not None for v in ref["deff"]):
        _close(pick(out["deff"]), pick(ref["deff"]), REL, "deff", case["id"])
    assert list(out["df"]) == [int(v) for v in ref["df"]], case["id"]


def test_lonely_psu_fail_names_the_stratum():
    d = Design(lone_data(), ids="dnum", strata="grp", weights="pw")
    with pytest.raises(DesignError, match="stratum z has only one PSU") as err:
        d.mean("api00")
    assert err.value.column == "grp"
    assert "one PSU" in REFERENCE["meta"]["lonely_fail_message"]  # R fails on the same design


def test_post_stratified_enroll_total_is_the_published_406293():
    """R reports SE 406,293 for the post-stratified enroll total of dclus1, and 1,021,788 when the
    same post-stratified weights are treated as fixed sampling weights."""
    after = design("clus1_ps")
    fixed = Design(load("apiclus1").assign(psw=after.weights), ids="dnum", weights="psw", fpc="fpc")
    assert round(after.total("enroll")["se"].iloc[0]) == 406293
    assert round(fixed.total("enroll")["se"].iloc[0]) == 1021788
