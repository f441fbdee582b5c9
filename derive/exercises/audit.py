"""Auditing a written solution (`derive check SPEC ANSWERS`): each value a hand-written
solution states (a textbook page, a handout, a student's homework), by its answer-key id,
is judged against the spec's derivation:

- right: as the derivation shows it (carrying values rounded to the stated decimals);
- right within rounding: the full-precision value rounded, where carrying the rounded
  intermediate values gives another last digit;
- follow-through: wrong only because other stated values are wrong, right from them (the
  derivation run again with the stated values in place of the right ones);
- truncated: the value from the stated ones, cut off instead of rounded;
- a named mistake of the catalogue (model/mistakes.py);
- wrong.

A number of the spec that the solution uses with another value (it prints w = 0.8 but
computes with 0.7) is found first: for the first wrong forward value, the parameter and the
short decimal that explain it are sought, and the rest is judged with that value, the
misreading reported once. Each finding that is not right names the stated values it
follows from (those that alone change it); one that follows from none is where an error
starts on its path.

The ids are the answer key's (z2[0], a1[1], loss, grad:W1[0,0], new:b2[0]: the first
update, its first sample), with a prefix for the rest of the run: `sample2:z1[0]` (another
sample of the first update), `step3:grad:W1[0,0]`, `step3:sample4:a2[0]`, `final:loss` (the
forward pass after the last update). Follow-through is judged within the first update;
a later value is right, right within rounding, truncated, a named mistake or wrong.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from ..errors import SpecError, UsageError, quoted
from ..model.mistakes import applicable
from ..model.numeric import DEFAULT_DIGITS, carried, exact, truncated
from ..solution.derivation import runs
from ..spec.schema import Spec, load_spec
from .variants import _run_values, follows_from, mistaken_values, run_values, values_given

MAX_STATED = 10_000
MAX_DECIMALS = 8


class Verdict(Enum):
    RIGHT = "right"
    ROUNDING = "right within rounding"
    FOLLOW_THROUGH = "follow-through"
    TRUNCATED = "truncated"
    MISTAKE = "mistake"
    WRONG = "wrong"


@dataclass(frozen=True)
class Finding:
    id: str
    stated: float
    expected: float  # the derivation's value, as it shows it
    verdict: Verdict
    detail: str = ""
    sources: tuple[str, ...] = ()  # the stated values it follows from
    mistake: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.RIGHT, Verdict.ROUNDING)

    @property
    def first(self) -> bool:
        """Where an error starts: not right, and following from no other stated value."""
        return not self.ok and not self.sources


@dataclass(frozen=True)
class Misreading:
    parameter: str  # W2[0,0]
    given: float  # in the spec
    used: float  # in the solution


@dataclass(frozen=True)
class Audit:
    findings: tuple[Finding, ...]
    misreadings: tuple[Misreading, ...]
    digits: int

    @property
    def ok(self) -> bool:
        return not self.misreadings and all(f.ok for f in self.findings)


def read_answers(source: Path | str | Mapping[str, Any]) -> dict[str, str]:
    """id → the stated value as written, from a mapping, or a YAML, JSON or CSV
    (question,value) file."""
    if isinstance(source, Mapping):
        raw = dict(source)
        label = "answers"
    else:
        path = Path(source)
        label = str(path)
        if path.suffix.lower() == ".csv":
            raw = _read_csv(path)
        else:
            from ..spec.schema import _read

            raw = _read(path, label)
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError(label, None, "expected a mapping of answer-key ids to values (z2[0]: 0.103, grad:W1[0,0]: 0.082)")
    if len(raw) > MAX_STATED:
        raise SpecError(label, None, f"more than {MAX_STATED:,} values")
    stated = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise SpecError(label, quoted(key)[1:-1], f"expected a number, got {quoted(value)}")
        text = str(value).strip().replace("−", "-")
        try:
            number = float(text)
        except ValueError:
            raise SpecError(label, quoted(key)[1:-1], f"expected a number, got {quoted(value)}") from None
        if not math.isfinite(number):
            raise SpecError(label, quoted(key)[1:-1], f"expected a finite number, got {quoted(value)}")
        stated[str(key)] = text
    return stated


def _read_csv(path: Path) -> dict[str, str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SpecError(str(path), None, f"cannot be read as CSV: {error}") from None
    if rows and not {"question", "value"} <= set(rows[0]):
        raise SpecError(str(path), "line 1", "expected the columns question,value")
    return {row["question"].strip(): row["value"] for row in rows}


def _decimals(text: str) -> int:
    mantissa = re.split(r"[eE]", text)[0]
    return len(mantissa.partition(".")[2])


def check(spec, answers, *, digits: int | None = None) -> Audit:
    """Audits the values `answers` states (a mapping or a file, by answer-key id) against
    `spec` (a network spec). `digits`: the decimals the solution carries; by default the
    most any stated value has, and at least 3 (0.6 may be a rounded 0.600)."""
    spec = load_spec(spec)
    if spec.kind != "network":
        raise UsageError("derive check: only network specs can be audited so far")
    texts = read_answers(answers)
    if digits is None:
        digits = max([DEFAULT_DIGITS] + [_decimals(t) for t in texts.values()])
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= MAX_DECIMALS:
        raise UsageError(f"digits: expected a whole number from 0 to {MAX_DECIMALS}, got {digits!r}")
    numbers = runs(spec, digits=digits)
    known = run_values(numbers.network, numbers.shown)
    unknown = [key for key in texts if key not in known]
    if unknown:
        examples = ", ".join(list(known)[:4])
        raise SpecError(
            "answers", quoted(unknown[0])[1:-1],
            f"not an answer-key id of this spec (such as {examples}, …; the prefixes sampleN:, stepK: and final: name the rest of the run)",
        )
    stated = {key: float(text) for key, text in texts.items()}
    misreadings = _misreadings(spec, stated, digits)
    if misreadings:
        spec = _with_parameters(spec, {m.parameter: m.used for m in misreadings})
        numbers = runs(spec, digits=digits)
    return Audit(tuple(_judge(numbers, stated, digits)), tuple(misreadings), digits)


def _half(digits: int) -> float:
    return 0.5 * 10.0**-digits * (1 + 1e-9)


def _judge(numbers, stated: Mapping[str, float], digits: int) -> list[Finding]:
    network = numbers.network
    shown = run_values(network, numbers.shown)
    full = run_values(network, numbers.exact)
    first = set(_run_values(network, numbers.shown))  # the first update's ids: follow-through is judged there
    verdicts: dict[str, Verdict] = {}
    for key, value in stated.items():
        if abs(value - shown[key]) <= _half(digits) * 1e-6 + 1e-12 or round(shown[key], digits) == value:
            verdicts[key] = Verdict.RIGHT
        elif abs(value - full[key]) <= _half(digits):
            verdicts[key] = Verdict.ROUNDING  # the exact value rounded, where carrying gives another last digit
    wrong = {key: value for key, value in stated.items() if key not in verdicts and key in first}
    later = any(key not in first for key in stated)
    mistakes = {}
    for mistake in applicable(network.spec):
        values = mistaken_values(numbers, mistake, digits, every=later)
        if values is not None:
            mistakes[mistake.name] = values[0]
    findings = []
    for key in _order(shown, stated):
        value = stated[key]
        if key in verdicts:
            findings.append(Finding(key, value, shown[key], verdicts[key]))
            continue
        others = {k: v for k, v in wrong.items() if k != key} if key in first else {}
        sources = follows_from(numbers, others, key) if others else ()
        recomputed = values_given(numbers, others) if others else None
        unrounded = values_given(numbers, others, exact) if others else full
        if recomputed is not None and sources and abs(value - recomputed[key]) <= _half(digits):
            findings.append(Finding(key, value, shown[key], Verdict.FOLLOW_THROUGH,
                                    f"right from the stated {', '.join(sources)}", sources))
            continue
        if unrounded is not None and truncated(digits)(unrounded[key]) == value and round(unrounded[key], digits) != value:
            findings.append(Finding(key, value, shown[key], Verdict.TRUNCATED,
                                    f"{unrounded[key]:.{digits + 2}f} cut off, not rounded", sources))
            continue
        named = next((name for name, values in mistakes.items() if abs(values[key] - value) <= _half(digits)), None)
        if named is not None:
            findings.append(Finding(key, value, shown[key], Verdict.MISTAKE, named, sources, named))
            continue
        findings.append(Finding(key, value, shown[key], Verdict.WRONG, "", sources))
    return findings


def _order(values: Mapping[str, float], stated: Mapping[str, float]) -> list[str]:
    """The stated ids in the derivation's order (`run_values`: per update its forward values,
    loss, gradients and updated parameters; then the forward pass after the last)."""
    rank = {key: position for position, key in enumerate(values)}
    return sorted(stated, key=lambda key: rank.get(key.removeprefix("step1:"), rank[key]))


def _with_parameters(spec: Spec, values: Mapping[str, float]) -> Spec:
    """The spec with some parameters (by key, W2[0,0], b1[1], b2) set to other values."""
    data = spec.to_dict()
    for key, value in values.items():
        match = re.fullmatch(r"([Wb])(\d+)(?:\[(\d+)(?:,(\d+))?\])?", key)
        kind, layer = match.group(1), int(match.group(2)) - 1
        entry = data["layers"][layer]
        if kind == "W":
            entry["weights"][int(match.group(3))][int(match.group(4))] = value
        elif match.group(3) is None:
            entry["bias"] = value
        else:
            entry["bias"][int(match.group(3))] = value
    return load_spec(data, name=spec.name)


def _misreadings(spec: Spec, stated: Mapping[str, float], digits: int) -> list[Misreading]:
    """A parameter the solution uses with another short value: sought for the first stated
    forward value that is wrong, among the parameters that feed it, as the short decimal
    (at most the spec's decimals, or two) that makes that value and the most others right."""
    numbers = runs(spec, digits=digits)
    network = numbers.network
    shown = _run_values(network, numbers.shown)
    forward = [key for key in _order(shown, {k: v for k, v in stated.items() if k in shown})
               if not key.startswith(("grad:", "new:")) and key != "loss"]
    wrong = next((key for key in forward if round(shown[key], digits) != stated[key] and abs(shown[key] - stated[key]) > _half(digits)), None)
    if wrong is None:
        return []
    best: tuple[int, Misreading] | None = None
    for position, parameter in enumerate(network.parameters):
        name = numbers.compiled.parameter_name(position)
        given = network.initial_values()[position]
        for used in _candidates(given):
            values = values_given(runs(_with_parameters(spec, {name: used}), digits=digits), {}, carried(digits))
            if values is None or abs(values[wrong] - stated[wrong]) > _half(digits):
                continue
            agree = sum(1 for key, value in stated.items() if key in values and abs(values[key] - value) <= _half(digits))
            if best is None or agree > best[0]:
                best = (agree, Misreading(name, given, used))
    return [best[1]] if best is not None else []


def _candidates(given: float) -> list[float]:
    """Short decimals near a given number: the values a solution may have used instead
    (a misprint or a misread digit): within ±1, in steps of 0.1."""
    return [round(given + step / 10, 1) for step in range(-10, 11) if step != 0]


def report(audit: Audit) -> list[str]:
    """The audit as lines of text: the misreadings, then one line per stated value."""
    lines = [f"uses {m.parameter} = {m.used:g} where the spec gives {m.given:g}" for m in audit.misreadings]
    width = max((len(f.id) for f in audit.findings), default=8)
    for finding in audit.findings:
        mark = "ok " if finding.ok else ("-> " if finding.first else "x  ")
        expected = "" if finding.ok else f" (derivation: {finding.expected:g})"
        detail = f": {finding.detail}" if finding.detail else ""
        lines.append(f"{mark}{finding.id:<{width}}  {finding.stated:g}  {finding.verdict.value}{detail}{expected}")
    starts = [f"{m.parameter} (misread)" for m in audit.misreadings] + [f.id for f in audit.findings if f.first]
    if starts:
        lines.append("errors start at: " + ", ".join(starts))
    lines.append("all right" if audit.ok else f"{sum(not f.ok for f in audit.findings)} of {len(audit.findings)} values not right")
    return lines
