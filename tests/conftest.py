"""Shared by the tests: the Hypothesis profiles (default: derandomized; long: 10,000
examples per property) and the tally of displayed lines recomputed on a calculator, reported
at the end of the run."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

# Property tests are derandomized in the normal run, so a run is repeatable; the long
# profile (`pytest --hypothesis-profile=long`) draws many thousands of fresh examples.
settings.register_profile("default", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")

# LaTeX's format files (derive/views/pdf.py) go to a folder of the run's, not the user's cache.
os.environ.setdefault("DERIVE_CACHE_DIR", tempfile.mkdtemp(prefix="derive-test-cache-"))

CALCULATOR_TALLY = {"documents": 0, "lines": 0}


@pytest.fixture(scope="session")
def calculator_tally() -> dict[str, int]:
    return CALCULATOR_TALLY


def pytest_terminal_summary(terminalreporter):
    tally = CALCULATOR_TALLY
    if tally["documents"]:
        terminalreporter.write_sep(
            "-", f"calculator: {tally['lines']} displayed lines of {tally['documents']} documents "
            "recomputed from their shown numbers"
        )
