"""The limits every input is checked against before any work starts.

Fixed limits keep a hostile file from exhausting the machine (its size, its nesting, the
size of its numbers and texts). Raisable limits bound the work a spec asks for; a course
that needs more raises one with `--limit NAME=N` (or `Limits(...)` in the API), and every
message that reports one says so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .errors import SpecError, UsageError

# Fixed: what a spec file may look like.
MAX_FILE_BYTES = 1_000_000  # a spec file (grading has its own caps on rows and lines)
MAX_DEPTH = 20  # nesting of lists and mappings in a spec file (a spec needs 4)
MAX_NUMBER = 1e6  # magnitude of any number in a spec
MAX_NUMBER_CHARACTERS = 100  # a number written with more characters is refused unread
MAX_TEXT = 200  # characters of a title
MAX_NODES = 200_000  # values in a spec file


@dataclass(frozen=True)
class Limits:
    """Raisable limits on the work a spec or a command asks for."""

    units: int = 64  # units (or inputs) in one layer
    layers: int = 10
    parameters: int = 5_000  # weights and biases of the network
    samples: int = 1_000
    steps: int = 10_000  # updates: steps, times the samples when each sample makes an update
    shown: int = 50_000  # parameters × samples: the values a worked solution writes out
    work: int = 20_000_000  # parameters × samples × steps: the arithmetic of a run
    # Values the JSON key lists: per update the parameters before and after and each of its
    # samples' forward pass. A million is about 60 MB of JSON. (A run keeps them in memory
    # only up to 400,000 values or 10,000 updates: model/numeric.py, KEPT_VALUES.)
    kept: int = 1_000_000
    variants: int = 1_000  # exercise variants in one set (--count, the number in --variant)

    def check(self, name: str, value: int, source: str, field: str | None, what: str) -> None:
        """Raises a SpecError when `value` is above the limit `name`."""
        limit = getattr(self, name)
        if value > limit:
            raise SpecError(source, field, f"{what} is {value:,}, above the limit of {limit:,} (raise it with --limit {name}=N)")

    def raised(self, settings: list[str] | tuple[str, ...]) -> Limits:
        """These limits with NAME=N settings applied (from --limit)."""
        names = [f.name for f in fields(self)]
        changes: dict[str, int] = {}
        for setting in settings:
            name, _, number = setting.partition("=")
            name = name.strip()
            if name not in names:
                raise UsageError(f"--limit {setting}: unknown limit; choose from {', '.join(names)}")
            try:
                value = int(number.strip())
            except ValueError:
                value = 0
            if value < 1 or value > 10**12:
                raise UsageError(f"--limit {setting}: expected NAME=N with N a whole number from 1 to 10^12")
            changes[name] = value
        return replace(self, **changes)


DEFAULT_LIMITS = Limits()


def kept_values(updates: int, parameters: int, samples_per_update: int, units: int) -> int:
    """The values a run of `updates` keeps and its JSON key lists: per update the parameters
    before and after, and each of its samples' forward pass (z and a of every unit, and the loss)."""
    return updates * (2 * parameters + samples_per_update * (3 * units + 1))
