"""Independent oracles for every number derive prints.

Nothing here imports derive's numerics: the network is re-implemented from the
spec dict, once in mpmath at 50 significant digits (forward pass, loss, central
finite differences) and once as one fully composed SymPy expression differentiated
with `sympy.diff`.

The numbers of a spec are read as the decimals they are written as (0.3 is 3/10, not
the double nearest to it), so that a weighted sum that cancels in decimals (0.3 · 3 −
0.2 · 4 − 0.1) is 0 here, as it is for derive and for a student. At a ReLU's or leaky
ReLU's kink (z = 0) the documented convention holds: the derivative from the left (0 for
the ReLU, alpha for the leaky ReLU). The finite differences take it by differentiating a
unit at its kink along its left piece; the composed SymPy expression by putting z = 0 in
the left piece of its Piecewise.
"""

from __future__ import annotations

import mpmath
import sympy as sp

mpmath.mp.dps = 50
STEP = mpmath.mpf("1e-20")
# |z| below this is z = 0 (decimals read at 50 digits leave ~1e-50 where they cancel); from
# this up to AMBIGUOUS a central difference would straddle the kink, and derive's doubles
# could not tell the sign: no test network should put a unit there.
KINK = mpmath.mpf("1e-30")
AMBIGUOUS = mpmath.mpf("1e-15")
KINKED = ("relu", "leaky_relu")


def decimal(value) -> mpmath.mpf:
    """A spec's number as the decimal it is written as, at 50 digits."""
    return value if isinstance(value, mpmath.mpf) else mpmath.mpf(repr(value))


def parameters(spec: dict) -> list[tuple[str, float]]:
    """(JSON key, value) of every parameter, in derive's documented order."""
    out = []
    for l, layer in enumerate(spec["layers"], start=1):
        for i, row in enumerate(layer["weights"]):
            for j, w in enumerate(row):
                out.append((f"W{l}[{i},{j}]", w))
        bias = layer.get("bias")
        if isinstance(bias, list):
            out += [(f"b{l}[{i}]", b) for i, b in enumerate(bias)]
        elif bias is not None:
            out.append((f"b{l}", bias))
    return out


def trainable(spec: dict) -> list[str]:
    keys = []
    for l, layer in enumerate(spec["layers"], start=1):
        keys += [f"W{l}[{i},{j}]" for i, row in enumerate(layer["weights"]) for j in range(len(row))]
        bias = layer.get("bias")
        if bias is not None and layer.get("train_bias", True):
            keys += [f"b{l}[{i}]" for i in range(len(bias))] if isinstance(bias, list) else [f"b{l}"]
    return keys


def _activate(name: str, zs: list, alpha, lib, left: frozenset = frozenset()):
    """The activations of a layer; the units in `left` take their left piece (0, alpha·z)."""
    if name == "linear":
        return list(zs)
    if name == "relu":
        return [z if z > 0 and i not in left else lib.mpf(0) if lib is mpmath else 0 for i, z in enumerate(zs)]
    if name == "leaky_relu":
        return [z if z > 0 and i not in left else alpha * z for i, z in enumerate(zs)]
    if name == "sigmoid":
        return [1 / (1 + lib.exp(-z)) for z in zs]
    if name == "tanh":
        return [lib.tanh(z) for z in zs]
    if name == "softmax":
        exps = [lib.exp(z) for z in zs]
        total = sum(exps)
        return [e / total for e in exps]
    raise AssertionError(name)


def _sample_loss(name: str, predictions: list, targets: list, lib):
    k = len(predictions)
    if name == "half_sse":
        return sum((t - p) ** 2 for p, t in zip(predictions, targets)) / 2
    if name == "sse":
        return sum((t - p) ** 2 for p, t in zip(predictions, targets))
    if name == "mse":
        return sum((t - p) ** 2 for p, t in zip(predictions, targets)) / k
    if name == "bce":
        return -sum(t * lib.log(p) + (1 - t) * lib.log(1 - p) for p, t in zip(predictions, targets)) / k
    if name == "cross_entropy":
        return -sum(t * lib.log(p) for p, t in zip(predictions, targets) if t != 0)
    raise AssertionError(name)


def _pre_activations(number: int, layer: dict, values: dict, inputs: list) -> list:
    """z_i = Σ_j w_ij a_j (+ b_i or the shared b) of layer `number`."""
    bias = layer.get("bias")
    zs = []
    for i in range(len(layer["weights"])):
        z = sum(values[f"W{number}[{i},{j}]"] * a for j, a in enumerate(inputs))
        if isinstance(bias, list):
            z += values[f"b{number}[{i}]"]
        elif bias is not None:
            z += values[f"b{number}"]
        zs.append(z)
    return zs


def forward(spec: dict, values: dict, x: list, lib=mpmath, left: frozenset = frozenset()):
    """Pre-activations and activations per layer of one sample, keyed as in the JSON; the
    units named in `left` ("z1[0]") take their left piece."""
    record = {}
    inputs = [decimal(v) if lib is mpmath else v for v in x]
    for l, layer in enumerate(spec["layers"], start=1):
        zs = _pre_activations(l, layer, values, inputs)
        alpha = layer.get("alpha", 0.01)
        pieces = frozenset(i for i in range(len(zs)) if f"z{l}[{i}]" in left)
        outputs = _activate(layer["activation"], zs, decimal(alpha) if lib is mpmath else alpha, lib, pieces)
        for i, (z, a) in enumerate(zip(zs, outputs)):
            record[f"z{l}[{i}]"] = z
            record[f"a{l}[{i}]"] = a
        inputs = outputs
    return record, inputs


def kinks(spec: dict, record: dict) -> frozenset:
    """The units of one sample's forward record ("z1[0]") that sit at their kink."""
    at = set()
    for l, layer in enumerate(spec["layers"], start=1):
        if layer["activation"] not in KINKED:
            continue
        for i in range(layer["units"]):
            z = abs(record[f"z{l}[{i}]"])
            assert not KINK <= z < AMBIGUOUS, f"z{l}[{i}] = {record[f'z{l}[{i}]']}: too near the kink to tell its side"
            if z < KINK:
                at.add(f"z{l}[{i}]")
    return frozenset(at)


def batch_loss(spec: dict, values: dict, samples: list[dict], lib=mpmath, left: list | None = None):
    """The batch's loss; `left`, one set per sample, names the units that take their left piece."""
    losses = []
    for n, sample in enumerate(samples):
        _, predictions = forward(spec, values, sample["x"], lib, left[n] if left else frozenset())
        targets = [decimal(t) if lib is mpmath else t for t in sample["y"]]
        losses.append(_sample_loss(spec["loss"], predictions, targets, lib))
    total = sum(losses)
    return total / len(losses) if spec.get("batch", "mean") == "mean" else total


def finite_difference_gradient(spec: dict, values: dict, samples: list[dict]) -> dict:
    """Central differences of the batch loss in 50-digit arithmetic; a unit at its kink at
    `values` is differentiated along its left piece (the documented derivative from the left)."""
    left = [kinks(spec, forward(spec, values, sample["x"])[0]) for sample in samples]
    gradient = {}
    for key in trainable(spec):
        up, down = dict(values), dict(values)
        up[key] += STEP
        down[key] -= STEP
        gradient[key] = (batch_loss(spec, up, samples, left=left) - batch_loss(spec, down, samples, left=left)) / (2 * STEP)
    return gradient


def sympy_gradient(spec: dict, values: dict, samples: list[dict]) -> dict:
    """sympy.diff of the fully composed batch loss, evaluated at `values` to 30 digits.

    For each parameter the loss is composed with that parameter as a symbol and the
    others as 30-digit numbers (the same function along that coordinate, and a much
    smaller expression), differentiated, then evaluated at the parameter's value. A ReLU
    is Piecewise((z, z > 1e-20), (0, True)): at z = 0 its derivative is the left piece's."""

    class Lib:
        exp = staticmethod(sp.exp)
        log = staticmethod(sp.log)
        tanh = staticmethod(sp.tanh)

    def number(value) -> sp.Float:
        return sp.Float(str(decimal(value)), 30)

    kink = sp.Float("1e-20", 30)  # 30-digit decimals leave ~1e-30 where they cancel

    def composed_forward(point: dict, x: list):
        inputs = [number(v) for v in x]
        for l, layer in enumerate(spec["layers"], start=1):
            zs = _pre_activations(l, layer, point, inputs)
            name = layer["activation"]
            # A composed ReLU must be differentiable almost everywhere: a Piecewise.
            if name == "relu":
                inputs = [sp.Piecewise((z, z > kink), (0, True)) for z in zs]
            elif name == "leaky_relu":
                alpha = number(layer.get("alpha", 0.01))
                inputs = [sp.Piecewise((z, z > kink), (alpha * z, True)) for z in zs]
            else:
                inputs = _activate(name, zs, None, Lib)
        return inputs

    gradient = {}
    for key in trainable(spec):
        theta = sp.Symbol("theta")
        point = {k: number(v) for k, v in values.items()}
        point[key] = theta
        losses = []
        for sample in samples:
            predictions = composed_forward(point, sample["x"])
            losses.append(_sample_loss(spec["loss"], predictions, [number(t) for t in sample["y"]], Lib))
        total = sp.Add(*losses)
        loss = total / len(losses) if spec.get("batch", "mean") == "mean" else total
        gradient[key] = sp.diff(loss, theta).subs(theta, number(values[key])).evalf(30)
    return gradient


def train(spec: dict) -> tuple[list[dict], dict]:
    """Gradient descent as the spec asks, in 50-digit arithmetic with finite-difference
    gradients: per update the samples used, loss, gradients and parameters after; and the
    parameters after the last update."""
    values = {key: decimal(v) for key, v in parameters(spec)}
    data = spec["data"]
    batches = [list(range(len(data)))] if spec.get("update", "batch") == "batch" else [[n] for n in range(len(data))]
    rate = decimal(spec["learning_rate"])
    updates = []
    for _ in range(spec.get("steps", 1)):
        for batch in batches:
            samples = [data[n] for n in batch]
            gradient = finite_difference_gradient(spec, values, samples)
            loss = batch_loss(spec, values, samples)
            forwards = [forward(spec, values, s["x"])[0] for s in samples]
            values = {key: v - rate * gradient[key] if key in gradient else v for key, v in values.items()}
            updates.append({"loss": loss, "gradients": gradient, "updated": dict(values), "forward": forwards})
    return updates, values
