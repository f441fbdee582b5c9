"""The one error hierarchy: every failure a user can cause is a `DeriveError`.

The CLI prints `str(error)` and exits with `error.exit_code`; users never see a
traceback for their own mistakes.
"""

from __future__ import annotations

import re


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
    """Numerical trouble while training (log(0), overflow): names when it happened (the
    update step, or the forward pass before or after training) and the sample."""

    def __init__(self, source: str, when: str | None, sample: int | None, message: str):
        self.source = source
        self.when = when
        self.sample = sample
        where = ", ".join(part for part in (when, f"sample {sample}" if sample is not None else None) if part)
        super().__init__(f"{source}: {where + ': ' if where else ''}{message}")


class UsageError(DeriveError):
    """A command line that asks for something impossible (e.g. two formats to one file)."""


class OutputError(DeriveError):
    """Output that could not be written (a directory that is a file, no permission)."""

    exit_code = 1


_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def plain(text: object) -> str:
    """Text from outside made safe for one line of a terminal: escape sequences removed,
    control characters and line breaks turned into single spaces."""
    return _CONTROL.sub(" ", _ESCAPE.sub("", str(text))).strip()


def quoted(text: object, limit: int = 40) -> str:
    """User text quoted in a message: `plain`, cut to `limit` characters, in quotes."""
    cleaned = plain(text)
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return f"'{cleaned}'"


MESSAGE_LIMIT = 400


def one_line(message: object) -> str:
    """A message as the CLI prints it: one line of at most MESSAGE_LIMIT characters."""
    cleaned = plain(message)
    return cleaned if len(cleaned) <= MESSAGE_LIMIT else cleaned[: MESSAGE_LIMIT - 1] + "…"
