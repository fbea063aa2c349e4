"""Shared settings and fixtures: hypothesis without wall-clock checks, committed result files, the locked
package versions.

A test that produces a result file worth committing (coverage rates, reference tables) writes it under
``build/results/`` and compares it with the committed copy in ``tests/results/``, so ``make test`` never
changes a committed file. ``make results`` sets ``UPDATE_RESULTS=1`` and runs the tests marked
``results``: the fresh file then replaces the committed one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No test may depend on the machine's load: hypothesis' per-example deadline and its "input generation is
# slow" health check both measure wall-clock time, so both are off for every property test (a test's own
# @settings still overrides the rest). CI (CI=true) also draws the same examples on every run.
settings.register_profile(
    "project",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
    print_blob=True,
)
settings.load_profile("project")

ROOT = Path(__file__).resolve().parent.parent
BUILT = ROOT / "build" / "results"
COMMITTED = Path(__file__).parent / "results"

sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402  (scripts/lock.py reads requirements.lock)


@pytest.fixture
def committed_result():
    """``check(name, text)``: write ``build/results/name``; fail when it differs from
    ``tests/results/name`` (or replace the committed file under ``make results``)."""

    def check(name: str, text: str) -> None:
        built, committed = BUILT / name, COMMITTED / name
        built.parent.mkdir(parents=True, exist_ok=True)
        built.write_text(text, encoding="utf-8")
        if os.environ.get("UPDATE_RESULTS") == "1":
            committed.parent.mkdir(parents=True, exist_ok=True)
            committed.write_text(text, encoding="utf-8")
            return
        assert committed.exists(), f"{committed} is missing: run `make results` and commit it"
        if committed.read_text(encoding="utf-8") != text:
            differ = lock.installed_differences()
            if differ:
                pytest.skip(
                    f"{name} differs from the committed copy, and installed packages differ from "
                    f"requirements.lock: {', '.join(differ)}"
                )
            pytest.fail(
                f"{built} differs from the committed {committed.relative_to(ROOT)}: if the change is "
                "intended, run `make results` and commit it"
            )

    return check


@pytest.fixture(scope="session")
def lock_differences() -> list[str]:
    """Installed packages that differ from requirements.lock ('name installed (lock locked)')."""
    return lock.installed_differences()
