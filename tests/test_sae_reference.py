"""analysis.sae.fay_herriot reproduces R sae 1.3 (eblupFH, mseFH) for REML, ML and FH to 1e-6.

Expected values in tests/reference/sae_reference.json, written by tests/reference/make_sae_reference.R
from sae's own ``milk`` data and three synthetic data sets (one with σ̂²ᵤ truncated at 0, one whose
REML iterations pass through negative values for 30 steps) and milk stopped after 2 iterations (no
method has converged, sae says so and so must this code); these tests need no R.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.sae import FitError, fay_herriot

REFERENCE = json.loads((Path(__file__).parent / "reference" / "sae_reference.json").read_text())
CASES = [(name, method) for name, case in REFERENCE["cases"].items() for method in case["results"]]
RTOL, ATOL = 1e-6, 1e-9


def test_reference_was_made_by_sae_1_3():
    assert REFERENCE["meta"]["package"] == "sae" and REFERENCE["meta"]["version"] == "1.3"
    assert {m for _, m in CASES} == {"REML", "ML", "FH"}


@pytest.mark.parametrize(("name", "method"), CASES)
def test_eblup_mse_variance_and_coefficients_agree_with_sae(name, method):
    case = REFERENCE["cases"][name]
    expected = case["results"][method]
    args = (case["direct"], case["vardir"], np.array(case["X"]))
    if not expected["converged"]:
        with pytest.raises(FitError, match="did not converge"):
            fay_herriot(*args, method=method, max_iter=case["max_iter"])
        return
    fit = fay_herriot(*args, method=method, max_iter=case["max_iter"])
    for field in ("eblup", "mse", "refvar", "beta", "beta_se"):
        np.testing.assert_allclose(getattr(fit, field), expected[field], rtol=RTOL, atol=ATOL, err_msg=field)
    assert fit.iterations == expected["iterations"]
    psi = np.asarray(case["vardir"])
    gamma = expected["refvar"] / (expected["refvar"] + psi)
    np.testing.assert_allclose(fit.gamma, gamma, rtol=RTOL, atol=ATOL)


def test_zero_area_variance_gives_the_regression_fit():
    case = REFERENCE["cases"]["truncated"]
    fit = fay_herriot(case["direct"], case["vardir"], np.array(case["X"]), method="REML")
    assert fit.refvar == 0
    np.testing.assert_allclose(fit.eblup, fit.synthetic, rtol=0, atol=1e-12)
    assert (fit.gamma == 0).all()
