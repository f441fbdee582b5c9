"""The one error hierarchy: every failure a user can cause is a `DeriveError`.

The CLI prints `str(error)` and exits with `error.exit_code`; users never see a
traceback for their own mistakes.
"""

from __future__ import annotations


class DeriveError(Exception):
    """Base class of every error the tool reports to its user."""

    exit_code = 2


class SpecError(DeriveError):
    """A spec that cannot be used: names the file, the field and what was expected."""

    def __init__(self, source: str, field: str | None, message: str):
        self.source = source
        self.field = field
        self.message = message
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {message}")


class NumericalError(DeriveError):
    """Numerical trouble while training (log(0), overflow): names the step and the sample."""

    def __init__(self, source: str, step: int | None, sample: int | None, message: str):
        self.source = source
        self.step = step
        self.sample = sample
        where = f"step {step}, sample {sample}: " if step is not None else ""
        super().__init__(f"{source}: {where}{message}")


class UsageError(DeriveError):
    """A command line that asks for something impossible (e.g. two formats to one file)."""


class OutputError(DeriveError):
    """Output that could not be written (a directory that is a file, no permission)."""

    exit_code = 1
