"""The committed results of the simulation studies (``tests/results/``) show what the studies claim.

The studies take minutes each, so CI does not rerun them (``make study`` does, and compares the fresh
files with these). Here each committed file is held to the same claims the study asserts on fresh
numbers, so a result file that stopped supporting a claim cannot be committed unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_coverage
import test_evaluate_coverage
import test_replicate_coverage
import test_sae_coverage

RESULTS = Path(__file__).resolve().parent / "results"


@pytest.mark.parametrize(
    ("name", "claims"),
    [
        ("coverage.json", test_coverage.check_claims),
        ("replicate_coverage.json", test_replicate_coverage.check_claims),
        ("sae_coverage.json", test_sae_coverage.check_claims),
        ("wave_coverage.json", test_evaluate_coverage.check_claims),
    ],
)
def test_committed_study_results_support_their_claims(name, claims):
    claims(json.loads((RESULTS / name).read_text(encoding="utf-8")))
