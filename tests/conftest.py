"""Shared by the tests: the tally of displayed lines recomputed on a calculator, reported
at the end of the run."""

from __future__ import annotations

import pytest

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
