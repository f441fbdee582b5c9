"""Network specs: read (YAML, JSON, dict or built-in example), validated, frozen.

Every problem is a `SpecError` naming the file, the field and what was expected.
"""

from __future__ import annotations

import difflib
import json
from contextlib import contextmanager
import math
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from . import examples as builtin_examples
from ..errors import SpecError, plain, quoted
from ..limits import (
    DEFAULT_LIMITS,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_NUMBER,
    MAX_NUMBER_CHARACTERS,
    MAX_TEXT,
    Limits,
    kept_values,
)
from .expression import Expression, NamedNode, parse_expression, parse_nodes, variables
from .optimizers import OPTIMIZER_NAMES, RULES, WEIGHT_DECAY
from .vocabulary import ACTIVATION_NAMES, LOSS_NAMES, NOTATION_NAMES, OVERRIDABLE, Batch, notation_problem, symbol_problem


class Update(Enum):
    BATCH = "batch"
    SAMPLE = "sample"


class DecayMode(Enum):
    COUPLED = "coupled"  # the loss gains (λ/2) Σ w², each weight's gradient λ w
    DECOUPLED = "decoupled"  # w ← w − η λ w beside the update (AdamW); the loss is unchanged


@dataclass(frozen=True)
class Optimizer:
    """The update rule (a name in spec/optimizers.RULES) and its hyperparameters."""

    name: str = "sgd"
    settings: tuple[tuple[str, float | bool], ...] = ()

    @property
    def values(self) -> dict[str, float | bool]:
        return dict(self.settings)

    def to_spec(self) -> str | dict[str, Any]:
        return {"name": self.name, **dict(self.settings)}


class Rounding(Enum):
    EXACT = "exact"  # full precision, rounded only for display
    CARRY = "carry"  # every shown value rounded and used as shown, as by hand


@dataclass(frozen=True)
class NotationChoice:
    """A notation preset and the symbols a spec overrides in it (name → LaTeX)."""

    base: str
    overrides: tuple[tuple[str, str], ...] = ()


class Text(str):
    """Free text from a spec (a title): every output format prints it literally."""


@dataclass(frozen=True)
class Layer:
    units: int
    activation: str
    weights: tuple[tuple[float, ...], ...]
    # One number per unit, one number shared by the layer, or None (no bias).
    bias: tuple[float, ...] | float | None
    train_bias: bool = True
    alpha: float | None = None

    @property
    def shared_bias(self) -> bool:
        return isinstance(self.bias, float)


@dataclass(frozen=True)
class Sample:
    x: tuple[float, ...]
    y: tuple[float, ...]


DEFAULT_TITLE = "Forward and backward pass in a neural network"


@dataclass(frozen=True)
class Spec:
    name: str
    source: str
    title: Text
    inputs: int
    layers: tuple[Layer, ...]
    loss: str
    batch: Batch
    update: Update
    steps: int
    learning_rate: float
    data: tuple[Sample, ...]
    notation: NotationChoice | None = None
    rounding: Rounding | None = None
    optimizer: Optimizer = Optimizer()
    weight_decay: float = 0.0
    weight_decay_mode: DecayMode = DecayMode.COUPLED

    kind = "network"  # a GraphSpec's is "graph"

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    @property
    def updates(self) -> int:
        """How many parameter updates the run makes: each step one, or one per sample."""
        return self.steps * (len(self.data) if self.update is Update.SAMPLE else 1)

    def to_dict(self) -> dict[str, Any]:
        """The spec in its file format (loading it again gives the same spec)."""
        layers = []
        for layer in self.layers:
            entry: dict[str, Any] = {
                "units": layer.units,
                "activation": layer.activation,
                "weights": [list(row) for row in layer.weights],
            }
            if layer.alpha is not None:
                entry["alpha"] = layer.alpha
            if layer.bias is not None:
                entry["bias"] = layer.bias if layer.shared_bias else list(layer.bias)
            entry["train_bias"] = layer.train_bias
            layers.append(entry)
        return {
            "title": self.title,
            "inputs": self.inputs,
            "layers": layers,
            "loss": self.loss,
            "batch": self.batch.value,
            "update": self.update.value,
            "steps": self.steps,
            "learning_rate": self.learning_rate,
            "data": [{"x": list(s.x), "y": list(s.y)} for s in self.data],
            **({"notation": {"base": self.notation.base, **dict(self.notation.overrides)}} if self.notation else {}),
            **({"rounding": self.rounding.value} if self.rounding else {}),
            **({"optimizer": self.optimizer.to_spec()} if self.optimizer.name != "sgd" else {}),
            **({"weight_decay": self.weight_decay} if self.weight_decay else {}),
            **({"weight_decay_mode": self.weight_decay_mode.value} if self.weight_decay_mode is not DecayMode.COUPLED else {}),
        }


@dataclass(frozen=True)
class GraphSpec:
    """A computational graph (`kind: graph`): an expression, or named nodes whose last is
    the output, parsed by the allow-list grammar of spec/expression.py, and a value for
    each input."""

    name: str
    source: str
    title: Text
    text: str | tuple[str, ...]  # the expression, or the node lines, as written
    tree: Expression | None  # parsed expression (None with named nodes)
    nodes: tuple[NamedNode, ...] | None
    values: tuple[tuple[str, float], ...]  # in the order of first use
    rounding: Rounding | None = None

    kind = "graph"

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "graph",
            "title": self.title,
            **({"expression": self.text} if isinstance(self.text, str) else {"nodes": list(self.text)}),
            "values": dict(self.values),
            **({"rounding": self.rounding.value} if self.rounding else {}),
        }


GRAPH_FIELDS = ("kind", "title", "expression", "nodes", "values", "rounding")
GRAPH_TITLE = "A computational graph"
KINDS = ("network", "graph")

TOP_FIELDS = (
    "kind",
    "title", "inputs", "layers", "loss", "batch", "update", "steps", "learning_rate", "data", "notation", "rounding",
    "optimizer", "weight_decay", "weight_decay_mode",
)
LAYER_FIELDS = ("units", "activation", "alpha", "weights", "bias", "train_bias")
SAMPLE_FIELDS = ("x", "y")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML that also reads 1e-3 as a number (YAML 1.1 wants a dot). Texts are
    screened by `_screen_yaml` before it builds anything."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)


def load_spec(
    source: str | Path | Mapping[str, Any] | Spec | GraphSpec, *, name: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> Spec | GraphSpec:
    """Read and validate a spec: a path (YAML or JSON), a built-in example name, a dict.
    Everything is checked against `limits` before any work starts. A network spec gives a
    Spec, a `kind: graph` spec a GraphSpec."""
    if isinstance(source, (Spec, GraphSpec)):
        return source
    if not isinstance(limits, Limits):
        raise SpecError(str(name or "spec"), None, f"limits: expected derive.Limits, got {type(limits).__name__}")
    if name is not None and not isinstance(name, str):
        raise SpecError("spec", None, f"name: expected text, got {type(name).__name__}")
    if not isinstance(source, (str, Path, Mapping)):
        raise SpecError(
            "spec", None, f"expected a file name, a built-in example name or a mapping of spec fields, got {type(source).__name__}"
        )
    if isinstance(source, Mapping):
        return _validate(source, source=name or "spec", name=name or "spec", limits=limits)
    label = plain(source)[:200] or "spec"
    path = Path(source)
    if str(source) in builtin_examples.NAMES and not path.exists():
        path = builtin_examples.path(str(source))
        return _validate(_read(path, label), source=label, name=str(source), limits=limits)
    return _validate(_read(path, label), source=label, name=name or path.stem, limits=limits)


def _read(path: Path, label: str) -> Any:
    """The data of a spec file, read only if it is a regular file of at most MAX_FILE_BYTES."""
    try:
        if not path.exists():
            choices = ", ".join(builtin_examples.NAMES)
            raise SpecError(label, None, f"no such file (nor a built-in example: {choices})")
        if path.is_dir():
            raise SpecError(label, None, "is a directory, expected a spec file")
        if not path.is_file():
            raise SpecError(label, None, "is not a regular file (a device or a pipe?), expected a spec file")
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(label, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(label, None, f"the file is larger than {MAX_FILE_BYTES:,} bytes, too large for a spec")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(label, None, f"not UTF-8 text (byte {exc.start}): expected a YAML or JSON spec") from None
    if not text.strip():
        raise SpecError(label, None, "the file is empty (expected a network spec)")
    if path.suffix.lower() == ".json":
        return _read_json(text, label)
    return _read_yaml(text, label)


def _read_json(text: str, label: str) -> Any:
    _screen_json(text, label)

    def whole(digits: str) -> int | float:
        if len(digits) > MAX_NUMBER_CHARACTERS:
            raise SpecError(label, None, f"a number of {len(digits)} digits: numbers in a spec are at most {MAX_NUMBER:,.0f}")
        return int(digits)

    try:
        return json.loads(text, parse_int=whole)
    except json.JSONDecodeError as exc:
        raise SpecError(label, f"line {exc.lineno}", f"JSON syntax error: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise SpecError(label, None, f"cannot read it as JSON: {plain(exc)[:80]}") from None


def _screen_json(text: str, label: str) -> None:
    """Refuses nesting deeper than MAX_DEPTH and more than MAX_NODES values before the
    parser (which recurses) sees the text."""
    outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    depth = 0
    for line, row in enumerate(outside_strings.splitlines(), 1):
        for bracket in re.findall(r"[\[\]{}]", row):
            depth += 1 if bracket in "[{" else -1
            if depth > MAX_DEPTH:
                raise SpecError(label, f"line {line}", f"nested more than {MAX_DEPTH} levels deep (a spec needs 4)")
    if outside_strings.count(",") > MAX_NODES:
        raise SpecError(label, None, f"more than {MAX_NODES:,} values, too many for a spec")


@contextmanager
def _yaml_errors(label: str) -> Iterator[None]:
    """A YAML error as a SpecError naming its line."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else None
        raise SpecError(label, where, f"YAML syntax error: {plain(exc.problem or exc.context)}") from None
    except yaml.YAMLError as exc:
        raise SpecError(label, None, f"YAML syntax error: {plain(exc)[:120]}") from None


def _read_yaml(text: str, label: str) -> Any:
    _screen_yaml(text, label)
    try:
        with _yaml_errors(label):
            return yaml.load(text, Loader=_Loader)
    except (ValueError, OverflowError, RecursionError, TypeError) as exc:
        raise SpecError(label, None, f"cannot read a value: {plain(exc)[:80]}") from None


_NUMBER_LIKE = re.compile(r"[-+]?[0-9_.,:]+(?:[eE][-+]?[0-9]+)?|[-+]?0[xob][0-9a-fA-F_]+")


def _screen_yaml(text: str, label: str) -> None:
    """Reads the YAML event stream (the parser is a state machine, safe at any depth)
    and refuses what a spec never needs and a hostile file uses: anchors and aliases
    (merge-key and "billion laughs" bombs), nesting deeper than MAX_DEPTH, more than
    MAX_NODES values, and numbers too long to convert."""
    loader = _Loader(text)
    depth = nodes = 0
    try:
        with _yaml_errors(label):
            while loader.check_event():
                event = loader.get_event()
                line = f"line {event.start_mark.line + 1}" if event.start_mark else None
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    raise SpecError(label, line, "anchors and aliases (& and *) are not allowed in a spec; write the values out")
                if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise SpecError(label, line, f"nested more than {MAX_DEPTH} levels deep (a spec needs 4)")
                elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                    depth -= 1
                elif isinstance(event, yaml.ScalarEvent):
                    nodes += 1
                    if nodes > MAX_NODES:
                        raise SpecError(label, line, f"more than {MAX_NODES:,} values, too many for a spec")
                    value = event.value
                    if not event.style and len(value) > MAX_NUMBER_CHARACTERS and _NUMBER_LIKE.fullmatch(value):
                        raise SpecError(label, line, f"a number of {len(value)} characters: numbers in a spec are at most {MAX_NUMBER:,.0f}")
    finally:
        loader.dispose()


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {quoted(value)}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"a whole number of {len(str(abs(value))) if value.bit_length() < 10_000 else 'thousands of'} digits"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return quoted(repr(value))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class _Fields:
    """Reads one mapping of a spec, keeping the path for messages."""

    def __init__(
        self, source: str, path: str, data: Any, known: tuple[str, ...], what: str, limits: Limits = DEFAULT_LIMITS
    ):
        self.source = source
        self.path = path
        self.limits = limits
        if not isinstance(data, Mapping):
            raise self.error(None, f"expected {what}, got {_describe(data)}")
        self.data = data
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (known fields: {', '.join(known)})"
                raise self.error(quoted(key)[1:-1], f"unknown field{hint}")

    def where(self, field: Any) -> str | None:
        if field is None:
            return self.path or None
        if isinstance(field, str) and field.startswith("["):
            return f"{self.path}{field}"
        return f"{self.path}.{field}" if self.path else str(field)

    def error(self, field: Any, message: str) -> SpecError:
        return SpecError(self.source, self.where(field), message)

    def has(self, field: str) -> bool:
        return self.data.get(field) is not None

    def required(self, field: str, expected: str) -> Any:
        if field not in self.data or self.data[field] is None:
            raise self.error(field, f"missing (expected {expected})")
        return self.data[field]

    def number(self, field: str, value: Any, expected: str = "a number") -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, f"expected {expected}, got {_describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(field, f"expected a finite number, got {value}")
        if abs(value) > MAX_NUMBER:
            raise self.error(field, f"expected a number between {-MAX_NUMBER:,.0f} and {MAX_NUMBER:,.0f}, got {_describe(value)}")
        return float(value)

    def whole(self, field: str, value: Any, minimum: int, limit: str | None = None, what: str = "") -> int:
        """A whole number ≥ minimum, and within the raisable limit `limit` if given."""
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(field, f"expected a whole number ≥ {minimum}, got {_describe(value)}")
        if limit is not None:
            if value > 10**12:
                raise self.error(field, f"expected a whole number ≥ {minimum}, got {_describe(value)} (far above any limit)")
            self.limits.check(limit, value, self.source, self.where(field), what or field)
        return value

    def numbers(self, field: str, value: Any, count: int, scalar_ok: bool = True) -> tuple[float, ...]:
        """A list of `count` numbers (a bare number when count is 1)."""
        if scalar_ok and count == 1 and not isinstance(value, (list, Mapping, str)) and value is not None:
            return (self.number(field, value),)
        if not isinstance(value, list):
            raise self.error(field, f"expected a list of {_plural(count, 'number')}, got {_describe(value)}")
        if len(value) != count:
            raise self.error(field, f"expected {_plural(count, 'number')}, got {len(value)}")
        return tuple(self.number(f"{field}[{j}]", v) for j, v in enumerate(value))

    def choice(self, field: str, value: Any, choices: tuple[str, ...], what: str) -> str:
        """One of `choices`, matched without regard to case, spaces or hyphens (Sigmoid,
        leaky-ReLU)."""
        if isinstance(value, str):
            key = re.sub(r"[\s-]+", "_", value.strip()).casefold()
            for choice in choices:
                if choice.casefold() == key:
                    return choice
            shown = quoted(value)
        else:
            shown = _describe(value)
        close = difflib.get_close_matches(value.strip().lower(), choices, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise self.error(field, f"unknown {what} {shown}{hint}; choose one of {', '.join(choices)}")


def _title(top: _Fields) -> str:
    """The title as one line of printable text: line breaks and tabs become spaces; other
    control characters are refused (they break LaTeX and terminals)."""
    title = top.data.get("title")
    if title is None:
        return DEFAULT_TITLE
    if not isinstance(title, (str, int, float)) or isinstance(title, bool):
        raise top.error("title", f"expected text, got {_describe(title)}")
    text = " ".join(str(title).split())
    control = re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]", text)
    if control:
        raise top.error("title", f"contains the control character U+{ord(control.group()):04X}; expected printable text")
    if len(text) > MAX_TEXT:
        raise top.error("title", f"expected at most {MAX_TEXT} characters, got {len(text)}")
    return text or DEFAULT_TITLE


def _validate(raw: Any, *, source: str, name: str, limits: Limits = DEFAULT_LIMITS) -> Spec | GraphSpec:
    if isinstance(raw, Mapping) and raw.get("kind") is not None:
        kind = _Fields(source, "", {"kind": raw["kind"]}, ("kind",), "a spec").choice("kind", raw["kind"], KINDS, "kind of spec")
        if kind == "graph":
            return _validate_graph(raw, source=source, name=name)
    top = _Fields(source, "", raw, TOP_FIELDS, "a mapping of spec fields (inputs, layers, loss, ...)", limits)
    title = _title(top)
    inputs = top.whole("inputs", top.required("inputs", "the number of input features"), 1, "units", "the number of inputs")

    raw_layers = top.required("layers", "a list of layers, input side first")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise top.error("layers", f"expected a non-empty list of layers, got {_describe(raw_layers)}")
    limits.check("layers", len(raw_layers), source, "layers", "the number of layers")
    layers = []
    fan_in = inputs
    parameters = 0
    for index, raw_layer in enumerate(raw_layers):
        is_output = index == len(raw_layers) - 1
        layers.append(_layer(source, f"layers[{index}]", raw_layer, fan_in, is_output, limits))
        fan_in = layers[-1].units
        parameters += layers[-1].units * (len(layers[-1].weights[0]) + 1)
        limits.check("parameters", parameters, source, f"layers[{index}]", "the number of weights and biases up to this layer")

    loss = top.choice("loss", top.required("loss", f"one of {', '.join(LOSS_NAMES)}"), LOSS_NAMES, "loss")
    batch = Batch(top.choice("batch", top.data.get("batch", "mean"), tuple(b.value for b in Batch), "batch mode"))
    update = Update(
        top.choice("update", top.data.get("update", "batch"), tuple(u.value for u in Update), "update mode")
    )
    steps = top.whole("steps", top.data.get("steps", 1), 1, "steps", "the number of steps")
    learning_rate = top.number(
        "learning_rate", top.required("learning_rate", "a number > 0"), "a number > 0"
    )
    if learning_rate <= 0:
        raise top.error("learning_rate", f"expected a number > 0, got {learning_rate:g}")

    raw_data = top.required("data", "a list of samples, each with x and y")
    if not isinstance(raw_data, list) or not raw_data:
        raise top.error("data", f"expected a non-empty list of samples (- x: [...], y: [...]), got {_describe(raw_data)}")
    limits.check("samples", len(raw_data), source, "data", "the number of samples")
    limits.check("shown", parameters * len(raw_data), source, "data", "parameters × samples")
    limits.check("work", parameters * len(raw_data) * steps, source, "steps", "parameters × samples × steps")
    per_update = len(raw_data) if update is Update.BATCH else 1
    updates = steps * (len(raw_data) // per_update)
    if update is Update.SAMPLE:
        limits.check("steps", updates, source, "steps", "the number of updates (steps × samples, one update per sample)")
    units = sum(layer.units for layer in layers)
    limits.check(
        "kept", kept_values(updates, parameters, per_update, units), source, "steps",
        "the number of values the JSON key lists (per update the parameters before and after and each sample's forward pass)",
    )
    outputs = layers[-1].units
    data = []
    for index, raw_sample in enumerate(raw_data):
        sample = _Fields(source, f"data[{index}]", raw_sample, SAMPLE_FIELDS, "a sample with x and y")
        x = sample.numbers("x", sample.required("x", f"{_plural(inputs, 'input')}"), inputs)
        y = sample.numbers("y", sample.required("y", f"{_plural(outputs, 'target')}"), outputs)
        data.append(Sample(x, y))

    _check_loss(top, loss, layers, data)
    notation = _notation(top, top.data.get("notation"), layers)
    rounding = _rounding(top)
    optimizer = _optimizer(top, top.data.get("optimizer", "sgd"))
    weight_decay = top.number("weight_decay", top.data.get("weight_decay", 0), "a number ≥ 0")
    if weight_decay < 0:
        raise top.error("weight_decay", f"expected a number ≥ 0, got {weight_decay:g}")
    mode = DecayMode(top.choice("weight_decay_mode", top.data.get("weight_decay_mode", "coupled"), tuple(m.value for m in DecayMode), "weight decay mode"))
    _check_symbols(top, notation, optimizer, weight_decay, mode)
    return Spec(
        name=name,
        source=source,
        title=Text(title),
        inputs=inputs,
        layers=tuple(layers),
        loss=loss,
        batch=batch,
        update=update,
        steps=steps,
        learning_rate=learning_rate,
        data=tuple(data),
        notation=notation,
        rounding=rounding,
        optimizer=optimizer,
        weight_decay=weight_decay,
        weight_decay_mode=mode,
    )


def _rounding(top: _Fields) -> Rounding | None:
    if not top.has("rounding"):
        return None
    return Rounding(top.choice("rounding", top.data["rounding"], tuple(r.value for r in Rounding), "rounding"))


def _validate_graph(raw: Mapping[str, Any], *, source: str, name: str) -> GraphSpec:
    top = _Fields(source, "", raw, GRAPH_FIELDS, "a mapping of graph spec fields (kind, expression, values)")
    title = _title(top) if top.has("title") else GRAPH_TITLE
    has_expression, has_nodes = top.has("expression"), top.has("nodes")
    if has_expression == has_nodes:
        raise top.error("expression", "expected either expression (one formula) or nodes (a list of 'name = formula'), not both" if has_expression else "missing (expected a formula such as '(x + y) * z', or nodes: a list of 'name = formula')")
    text: str | tuple[str, ...]
    tree, nodes = None, None
    if has_expression:
        text = top.data["expression"]
        if not isinstance(text, str):
            raise top.error("expression", f"expected a formula as text, got {_describe(text)}")
        tree = parse_expression(text, source, "expression")
        inputs = variables(tree)
    else:
        raw_nodes = top.data["nodes"]
        if not isinstance(raw_nodes, list) or not raw_nodes:
            raise top.error("nodes", f"expected a list of 'name = formula', got {_describe(raw_nodes)}")
        nodes = parse_nodes(raw_nodes, source, "nodes")
        text = tuple(raw_nodes)
        defined = {node.name for node in nodes}
        inputs = tuple(dict.fromkeys(v for node in nodes for v in variables(node.expression) if v not in defined))
    raw_values = top.required("values", "a value for each input: {x: -2, y: 5}")
    if not isinstance(raw_values, Mapping):
        raise top.error("values", f"expected a mapping of input names to numbers, got {_describe(raw_values)}")
    fields = _Fields(source, "values", raw_values, tuple(str(k) for k in raw_values), "values")
    for key in raw_values:
        if key not in inputs:
            known = ", ".join(inputs) if inputs else "none"
            raise fields.error(quoted(key)[1:-1], f"not an input of the expression (its inputs: {known})")
    missing = [n for n in inputs if n not in raw_values]
    if missing:
        raise top.error("values", f"missing a value for {', '.join(quoted(n) for n in missing)}")
    values = tuple((n, fields.number(n, raw_values[n])) for n in inputs)
    rounding = _rounding(top)
    return GraphSpec(name, source, Text(title), text, tree, nodes, values, rounding)


def _check_symbols(top: _Fields, notation: NotationChoice | None, optimizer: Optimizer, decay: float, mode: DecayMode) -> None:
    """A symbol the spec renames must not be one the update rule or the weight decay writes
    (loss: m with Adam's m, learning_rate: \\varepsilon beside Adam's ε, loss: J with the
    penalised loss J)."""
    if notation is None or not notation.overrides:
        return
    rule = RULES[optimizer.name]
    taken = {a.letter: f"the {rule.label} update's {a.name}" for a in rule.assignments}
    # a setting's letter, where it has no second choice to fall back on
    taken.update({h.letter: f"the {rule.label} setting {h.name}" for h in rule.hyperparameters if h.letter and not h.alternative})
    if rule.bias_correction:
        taken["t"] = "the update count t"
    if decay:
        taken[WEIGHT_DECAY.letter] = "the weight decay"
        if mode is DecayMode.COUPLED:
            taken["J"] = "the loss with the weight-decay penalty"
    for key, value in notation.overrides:
        clash = taken.get(value.strip())
        if clash:
            raise top.error(f"notation.{key}", f"{quoted(value)} is already {clash}; choose another symbol")


def _optimizer(top: _Fields, raw: Any) -> Optimizer:
    """`optimizer: adam`, or `optimizer: {name: adam, beta1: 0.9}`: a rule of the table and
    its hyperparameters, each checked against its range (defaults for those not given)."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        raise top.error("optimizer", f"expected a name ({', '.join(OPTIMIZER_NAMES)}) or {{name: …, …}}, got {_describe(raw)}")
    name = top.choice("optimizer", raw.get("name"), OPTIMIZER_NAMES, "optimizer") if "name" in raw else None
    if name is None:
        raise top.error("optimizer.name", f"missing (expected one of {', '.join(OPTIMIZER_NAMES)})")
    rule = RULES[name]
    fields = _Fields(top.source, "optimizer", raw, ("name",) + tuple(h.name for h in rule.hyperparameters), f"the {name} optimizer's settings")
    settings = []
    for parameter in rule.hyperparameters:
        value = fields.data.get(parameter.name, parameter.default)
        if parameter.switch:
            if not isinstance(value, bool):
                raise fields.error(parameter.name, f"expected true or false, got {_describe(value)}")
        else:
            value = fields.number(parameter.name, value, parameter.expected)
            if not parameter.allows(value):
                raise fields.error(parameter.name, f"expected {parameter.expected}, got {value:g}")
        settings.append((parameter.name, value))
    return Optimizer(name, tuple(settings))


def _notation(top: _Fields, raw: Any, layers: list[Layer]) -> NotationChoice | None:
    """`notation: flat`, or `notation: {base: esuli, loss: L}` with symbols overridden."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"base": raw}
    fields = _Fields(top.source, "notation", raw, ("base",) + OVERRIDABLE, "a notation name or {base: NAME, loss: L, …}")
    base = fields.choice("base", fields.data.get("base", "layered"), NOTATION_NAMES, "notation")
    overrides = []
    for key in OVERRIDABLE:
        if key in fields.data:
            value = fields.data[key]
            problem = symbol_problem(value) if isinstance(value, str) else f"got {_describe(value)}"
            if problem:
                raise fields.error(key, f"expected a LaTeX symbol such as L, \\mathcal{{L}} or \\alpha: {problem}")
            overrides.append((key, value))
    problem = notation_problem(base, [layer.units for layer in layers])
    if problem:
        raise fields.error("base", problem)
    return NotationChoice(base, tuple(overrides))


def _layer(source: str, path: str, raw: Any, fan_in: int, is_output: bool, limits: Limits = DEFAULT_LIMITS) -> Layer:
    fields = _Fields(source, path, raw, LAYER_FIELDS, "a layer (units, activation, weights, bias)", limits)
    units = fields.whole("units", fields.required("units", "the number of units"), 1, "units", "the number of units")
    activation = fields.choice(
        "activation",
        fields.required("activation", f"one of {', '.join(ACTIVATION_NAMES)}"),
        ACTIVATION_NAMES,
        "activation",
    )
    if activation == "softmax" and not is_output:
        raise fields.error("activation", "softmax is only allowed on the output layer")
    if activation == "softmax" and units < 2:
        raise fields.error("units", "a softmax layer needs at least 2 units")

    alpha = None
    if fields.has("alpha"):
        if activation != "leaky_relu":
            raise fields.error("alpha", f"alpha belongs to leaky_relu, not to {activation}")
        alpha = fields.number("alpha", fields.data["alpha"], "a number between 0 and 1")
        if not 0 < alpha < 1:
            raise fields.error("alpha", f"expected a number between 0 and 1, got {alpha:g}")

    expected_shape = f"{_plural(units, 'row')} of {_plural(fan_in, 'number')}"
    raw_weights = fields.required("weights", expected_shape)
    if not isinstance(raw_weights, list) or not all(isinstance(row, list) for row in raw_weights):
        raise fields.error("weights", f"expected {expected_shape}, got {_describe(raw_weights)}")
    if len(raw_weights) != units:
        raise fields.error("weights", f"expected {expected_shape}, got {_plural(len(raw_weights), 'row')}")
    for i, row in enumerate(raw_weights):
        if len(row) != fan_in:
            got = f"{len(row)}" if units == 1 else f"{len(row)} in row {i}"
            raise fields.error("weights", f"expected {expected_shape}, got {got}")
    weights = tuple(
        tuple(fields.number(f"weights[{i}][{j}]", v) for j, v in enumerate(row)) for i, row in enumerate(raw_weights)
    )

    raw_bias = fields.data.get("bias")
    bias: tuple[float, ...] | float | None
    if raw_bias is None:
        bias = None
    elif isinstance(raw_bias, list):
        bias = fields.numbers("bias", raw_bias, units, scalar_ok=False)
    else:
        bias = fields.number("bias", raw_bias, f"a list of {_plural(units, 'number')} or one shared number")

    train_bias = fields.data.get("train_bias", True)
    if not isinstance(train_bias, bool):
        raise fields.error("train_bias", f"expected true or false, got {_describe(train_bias)}")
    return Layer(units, activation, weights, bias, train_bias, alpha)


def _check_loss(top: _Fields, loss: str, layers: list[Layer], data: list[Sample]) -> None:
    output = layers[-1]
    last = f"layers[{len(layers) - 1}]"
    if loss == "bce":
        if output.activation != "sigmoid":
            raise top.error("loss", f"bce needs a sigmoid output layer, but {last} is {output.activation}")
        for n, sample in enumerate(data):
            for k, target in enumerate(sample.y):
                if not 0 <= target <= 1:
                    raise top.error(f"data[{n}].y[{k}]", f"bce needs targets in [0, 1], got {target:g}")
    if loss == "cross_entropy":
        if output.activation != "softmax":
            raise top.error(
                "loss", f"cross_entropy needs a softmax output layer, but {last} is {output.activation}"
            )
        for n, sample in enumerate(data):
            if any(t < 0 for t in sample.y) or abs(math.fsum(sample.y) - 1) > 1e-9:
                raise top.error(
                    f"data[{n}].y",
                    "cross_entropy needs targets that form a distribution "
                    f"(non-negative, summing to 1), got sum {math.fsum(sample.y):g}",
                )
