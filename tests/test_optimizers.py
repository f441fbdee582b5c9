"""derive's optimizers and weight decay against PyTorch (tests/torch_oracle.py): every step's
forward pass, loss, data loss, gradients, updated parameters and optimizer state, and the
final forward pass, for sgd, momentum, Nesterov momentum, RMSprop and Adam, each without
weight decay, with coupled and with decoupled weight decay, over 1, 2 and 10 steps, on
seeded random networks (sigmoid/tanh/linear/relu hidden layers, every loss with its output,
mean and sum batches, batch and sample updates, list/shared/no/frozen biases).

The harness is checked twice without derive's new code: against derive's plain SGD (no
`optimizer` field), which tests/test_gradients.py checks against 50-digit oracles, and by
replaying the contract's update rules in plain Python on torch's gradients. A drawn run with a
relu pre-activation near 0, a saturated bce/cross-entropy output or a value beyond 1e4 is
drawn again (doubles could not agree there to 1e-9, or derive stops on the overflow).
"""

from __future__ import annotations

import copy
import functools
import math
import random

import pytest
import torch  # noqa: F401  (a required test dependency: the oracle needs it)

import derive
from tests import torch_oracle

REL = 1e-9
ABS = 1e-12
OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"]
DECAYS = ["none", "coupled", "decoupled"]
STEPS = [1, 2, 10]
LOSSES = ["half_sse", "mse", "bce", "cross_entropy"]
MODES = [("mean", "batch"), ("sum", "sample"), ("mean", "sample"), ("sum", "batch")]
HIDDEN = ["sigmoid", "tanh", "linear", "relu"]
NETWORKS_PER_CASE = 4
KINK_MARGIN = 1e-6  # a relu pre-activation this close to 0 anywhere in the run: draw again
LARGE = 1e4  # and a run with a value this large
SATURATED = 1e-6  # or a bce/cross-entropy output this near 0 or 1


def two_decimals(rng: random.Random, low: float, high: float) -> float:
    return rng.randint(round(low * 100), round(high * 100)) / 100


def optimizer_field(rng: random.Random, kind: str):
    """The spec's `optimizer` with drawn hyperparameters (every field given)."""
    if kind == "sgd":
        return rng.choice([None, "sgd", "SGD"])
    if kind in ("momentum", "nesterov"):
        return {"name": "momentum", "momentum": two_decimals(rng, 0.5, 0.95), "nesterov": kind == "nesterov"}
    eps = rng.choice([1e-8, 1e-6, 1e-3])
    if kind == "rmsprop":
        return {"name": "rmsprop", "alpha": rng.choice([0.9, 0.95, 0.99, 0.999]), "eps": eps}
    if kind == "adagrad":
        return {"name": "adagrad", "eps": rng.choice([1e-10, 1e-8, 1e-3])}
    return {"name": "adam", "beta1": rng.choice([0.8, 0.9, 0.95]), "beta2": rng.choice([0.9, 0.99, 0.999]), "eps": eps}


def draw_spec(rng: random.Random, loss: str, batch: str, update: str, steps: int) -> dict:
    """A random network and data set, numbers written with two decimals as specs are."""
    inputs = rng.randint(1, 3)
    output = {"bce": "sigmoid", "cross_entropy": "softmax"}.get(loss) or rng.choice(["sigmoid", "tanh", "linear"])
    activations = [rng.choice(HIDDEN) for _ in range(rng.randint(1, 2))] + [output]
    layers, fan_in = [], inputs
    for index, activation in enumerate(activations):
        last = index == len(activations) - 1
        units = (2 if activation == "softmax" else rng.randint(1, 2)) if last else rng.randint(1, 3)
        layer = {"units": units, "activation": activation,
                 "weights": [[two_decimals(rng, -1, 1) for _ in range(fan_in)] for _ in range(units)]}
        bias = rng.choice(["list", "list", "shared", "none"])
        if activation == "softmax" and bias == "shared":
            # its gradient is Σ(ŷ − y) = 0: rounding noise, which RMSprop and Adam scale up
            bias = "list"
        if bias == "list":
            layer["bias"] = [two_decimals(rng, -0.5, 0.5) for _ in range(units)]
        elif bias == "shared":
            layer["bias"] = two_decimals(rng, -0.5, 0.5)
        if bias != "none" and rng.random() < 0.25:
            layer["train_bias"] = False
        layers.append(layer)
        fan_in = units
    outputs = layers[-1]["units"]
    data = []
    for _ in range(rng.randint(1, 3)):
        x = [two_decimals(rng, -2, 2) for _ in range(inputs)]
        if loss == "bce":
            y = [rng.choice([0.0, 1.0, two_decimals(rng, 0, 1)]) for _ in range(outputs)]
        elif loss == "cross_entropy":
            hot = rng.randrange(outputs)
            y = [1.0 if k == hot else 0.0 for k in range(outputs)]
        else:
            y = [two_decimals(rng, -1, 1) for _ in range(outputs)]
        data.append({"x": x, "y": y})
    return {"inputs": inputs, "layers": layers, "loss": loss, "batch": batch, "update": update, "steps": steps,
            "learning_rate": rng.choice([0.05, 0.1, 0.2, 0.5]), "data": data}


def numbers(record):
    if isinstance(record, dict):
        for value in record.values():
            yield from numbers(value)
    elif isinstance(record, list):
        for value in record:
            yield from numbers(value)
    else:
        yield record


def unfit(spec: dict, expected: dict) -> bool:
    """A run to draw again: a relu pre-activation near 0 (the kink, where doubles could not
    agree on the side), or a run that blows up (derive stops on an overflow)."""
    if not all(math.isfinite(v) and abs(v) < LARGE for v in numbers(expected)):
        return True
    relu = [l for l, layer in enumerate(spec["layers"], start=1) if layer["activation"] == "relu"]
    records = [r for step in expected["steps"] for r in step["forward"]] + expected["final"]["forward"]
    if any(abs(value) < KINK_MARGIN for r in records for key, value in r.items()
           if key.startswith("z") and int(key[1:key.index("[")]) in relu):
        return True
    # a saturated sigmoid or softmax output: ln(1 − ŷ), taken from ŷ as the loss is written,
    # keeps too few digits for both sides to agree to 1e-9
    output = f"a{len(spec['layers'])}["
    return spec["loss"] in ("bce", "cross_entropy") and any(
        not SATURATED < value < 1 - SATURATED for r in records for key, value in r.items() if key.startswith(output))


@functools.cache
def case_specs(optimizer: str, decay: str, steps: int) -> list[tuple[dict, dict]]:
    """(spec, torch's record) for the case's networks: one per loss, the (batch, update)
    pairs rotating with the case so that every optimizer meets every combination."""
    rng = random.Random(f"{optimizer}/{decay}/{steps}")
    shift = OPTIMIZERS.index(optimizer) + DECAYS.index(decay) + STEPS.index(steps)
    out = []
    for k, loss in enumerate(LOSSES[:NETWORKS_PER_CASE]):
        batch, update = MODES[(k + shift) % len(MODES)]
        while True:
            spec = draw_spec(rng, loss, batch, update, steps)
            field = optimizer_field(rng, optimizer)
            if field is not None:
                spec["optimizer"] = field
            if decay != "none":
                spec["weight_decay"] = rng.choice([0.01, 0.05, 0.1])
                if decay == "decoupled" or rng.random() < 0.5:  # coupled is the default: give it sometimes
                    spec["weight_decay_mode"] = decay
            expected = torch_oracle.train(spec)
            if not unfit(spec, expected):
                break
        out.append((spec, expected))
    return out


def close(ours, theirs) -> bool:
    return isinstance(ours, (int, float)) and math.isclose(ours, theirs, rel_tol=REL, abs_tol=ABS)


def compare_values(where: str, ours: dict, theirs: dict, problems: list[str]) -> None:
    if set(ours) != set(theirs):
        problems.append(f"{where}: keys {sorted(ours)} != torch's {sorted(theirs)}")
        return
    for key, value in theirs.items():
        if not close(ours[key], value):
            problems.append(f"{where}.{key}: derive {ours[key]!r}, torch {value!r}")


def compare_forward(where: str, ours: list, theirs: list, problems: list[str]) -> None:
    if len(ours) != len(theirs):
        problems.append(f"{where}: {len(ours)} samples, torch {len(theirs)}")
        return
    for n, (a, b) in enumerate(zip(ours, theirs)):
        compare_values(f"{where}[{n}]", a, b, problems)


def compare_losses(where: str, ours: dict, theirs: dict, problems: list[str]) -> None:
    for name in ("loss", "loss_data"):
        if (name in ours) != (name in theirs):
            problems.append(f"{where}: {name!r} {'present' if name in ours else 'absent'}, expected "
                            f"{'present' if name in theirs else 'absent'}")
        elif name in theirs and not close(ours[name], theirs[name]):
            problems.append(f"{where}.{name}: derive {ours[name]!r}, torch {theirs[name]!r}")


def differences(key: dict, expected: dict) -> list[str]:
    """Every way derive's key differs from torch's record."""
    problems: list[str] = []
    if len(key["steps"]) != len(expected["steps"]):
        return [f"{len(key['steps'])} updates, torch {len(expected['steps'])}"]
    for n, (ours, theirs) in enumerate(zip(key["steps"], expected["steps"]), start=1):
        where = f"update {n}"
        compare_forward(f"{where}.forward", ours["forward"], theirs["forward"], problems)
        compare_losses(where, ours, theirs, problems)
        compare_values(f"{where}.gradients", ours["gradients"], theirs["gradients"], problems)
        compare_values(f"{where}.updated", ours["updated"], theirs["updated"], problems)
        if ("state" in ours) != ("state" in theirs):
            problems.append(f"{where}: 'state' {'present' if 'state' in ours else 'absent'}, expected "
                            f"{'present' if 'state' in theirs else 'absent'}")
        elif "state" in theirs:
            if set(ours["state"]) != set(theirs["state"]):
                problems.append(f"{where}.state: quantities {sorted(ours['state'])}, expected {sorted(theirs['state'])}")
            else:
                for name in theirs["state"]:
                    compare_values(f"{where}.state.{name}", ours["state"][name], theirs["state"][name], problems)
    compare_forward("final.forward", key["final"]["forward"], expected["final"]["forward"], problems)
    compare_losses("final", key["final"], expected["final"], problems)
    return problems


def solve(spec: dict) -> dict:
    return derive.solve(copy.deepcopy(spec), rounding="exact").to_dict()


def test_torch_harness_matches_plain_sgd():
    """The oracle itself, on what derive has always done: no `optimizer`, no weight decay."""
    rng = random.Random("harness")
    checked = 0
    for k in range(24):
        batch, update = MODES[k % len(MODES)]
        spec = draw_spec(rng, LOSSES[k % len(LOSSES)], batch, update, rng.choice(STEPS))
        expected = torch_oracle.train(spec)
        if unfit(spec, expected):
            continue
        assert expected["steps"] and "state" not in expected["steps"][0]
        problems = differences(solve(spec), expected)
        assert not problems, f"{spec}\n" + "\n".join(problems[:20])
        checked += 1
    assert checked >= 20


def initial_parameters(spec: dict) -> dict[str, float]:
    """JSON key → initial value of every trainable parameter."""
    values = {}
    for l, layer in enumerate(spec["layers"], start=1):
        for i, row in enumerate(layer["weights"]):
            for j, w in enumerate(row):
                values[f"W{l}[{i},{j}]"] = w
        bias = layer.get("bias")
        if bias is not None and layer.get("train_bias", True):
            if isinstance(bias, list):
                values.update({f"b{l}[{i}]": b for i, b in enumerate(bias)})
            else:
                values[f"b{l}"] = bias
    return values


def replay(spec: dict, expected: dict) -> list[str]:
    """The contract's update rules written out in plain Python, applied to the gradients
    torch reported: they must give torch's parameters and state (so the harness drives
    torch.optim as the contract says), and the losses must differ by the penalty."""
    raw = spec.get("optimizer") or "sgd"
    config = {"name": raw} if isinstance(raw, str) else raw
    name = config["name"].lower()
    decay = spec.get("weight_decay", 0)
    decoupled = spec.get("weight_decay_mode", "coupled") == "decoupled"
    rate = spec["learning_rate"]
    w = initial_parameters(spec)
    weights = [k for k in w if k.startswith("W")]
    zero = dict.fromkeys(w, 0.0)
    state = {"momentum": {"v": zero}, "rmsprop": {"s": zero}, "adagrad": {"G": zero}, "adam": {"m": zero, "v": zero}}.get(name, {})
    problems: list[str] = []
    for t, step in enumerate(expected["steps"], start=1):
        penalty = decay / 2 * sum(w[k] ** 2 for k in weights) if decay and not decoupled else 0.0
        if decay and not close(step["loss"], step["loss_data"] + penalty):
            problems.append(f"update {t}: loss {step['loss']} != data {step['loss_data']} + penalty {penalty}")
        g = step["gradients"]
        new = {}
        for k in w:
            shrunk = w[k] * (1 - rate * decay) if decoupled and k in weights else w[k]
            if name == "sgd":
                new[k] = shrunk - rate * g[k]
            elif name == "momentum":
                v = config["momentum"] * state["v"][k] + g[k]
                state["v"] = {**state["v"], k: v}
                new[k] = shrunk - rate * (g[k] + config["momentum"] * v if config["nesterov"] else v)
            elif name == "rmsprop":
                s = config["alpha"] * state["s"][k] + (1 - config["alpha"]) * g[k] ** 2
                state["s"] = {**state["s"], k: s}
                new[k] = shrunk - rate * g[k] / (math.sqrt(s) + config["eps"])
            elif name == "adagrad":
                G = state["G"][k] + g[k] ** 2
                state["G"] = {**state["G"], k: G}
                new[k] = shrunk - rate * g[k] / (math.sqrt(G) + config["eps"])
            else:
                b1, b2 = config["beta1"], config["beta2"]
                m = b1 * state["m"][k] + (1 - b1) * g[k]
                v = b2 * state["v"][k] + (1 - b2) * g[k] ** 2
                state["m"], state["v"] = {**state["m"], k: m}, {**state["v"], k: v}
                new[k] = shrunk - rate * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + config["eps"])
        w = new
        compare_values(f"update {t}.updated", step["updated"], w, problems)
        for quantity, values in state.items():
            compare_values(f"update {t}.state.{quantity}", step["state"][quantity], values, problems)
    return problems


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_torch_harness_follows_the_contract(optimizer, decay):
    """The oracle itself, on the new optimizers: torch.optim, driven as the harness drives
    it, does what the contract's formulas say."""
    for spec, expected in case_specs(optimizer, decay, 10):
        problems = replay(spec, expected)
        assert not problems, f"{spec}\n" + "\n".join(problems[:20])


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_matches_torch(optimizer, decay, steps):
    for spec, expected in case_specs(optimizer, decay, steps):
        problems = differences(solve(spec), expected)
        assert not problems, f"{spec}\n" + "\n".join(problems[:20])


def small_spec(**fields) -> dict:
    spec = {
        "inputs": 2,
        "layers": [
            {"units": 2, "activation": "tanh", "weights": [[0.3, -0.6], [0.5, 0.2]], "bias": [0.1, -0.2]},
            {"units": 1, "activation": "sigmoid", "weights": [[0.7, -0.4]], "bias": 0.05},
        ],
        "loss": "bce",
        "steps": 2,
        "learning_rate": 0.1,
        "data": [{"x": [0.5, -1.0], "y": [1]}, {"x": [1.5, 0.25], "y": [0]}],
    }
    spec.update(fields)
    return spec


@pytest.mark.parametrize("fields", [
    {},
    {"optimizer": "sgd"},
    {"weight_decay": 0},
    {"optimizer": "sgd", "weight_decay": 0, "weight_decay_mode": "decoupled"},
], ids=["no-optimizer", "sgd", "weight-decay-0", "sgd-decay-0-decoupled"])
def test_sgd_without_decay_has_no_state_and_no_data_loss(fields):
    key = solve(small_spec(**fields))
    for step in key["steps"]:
        assert "state" not in step
        assert "loss_data" not in step
    assert "loss_data" not in key["final"]
    assert not differences(key, torch_oracle.train(small_spec(**fields)))


@pytest.mark.parametrize("mode", ["coupled", "decoupled"])
def test_sgd_with_decay_has_data_loss_but_no_state(mode):
    spec = small_spec(optimizer="sgd", weight_decay=0.05, weight_decay_mode=mode)
    key = solve(spec)
    assert all("state" not in step and "loss_data" in step for step in key["steps"])
    assert "loss_data" in key["final"]
    assert not differences(key, torch_oracle.train(spec))


@pytest.mark.parametrize("optimizer,names", [
    ({"name": "momentum", "momentum": 0.9, "nesterov": False}, {"v"}),
    ({"name": "momentum", "momentum": 0.9, "nesterov": True}, {"v"}),
    ({"name": "rmsprop", "alpha": 0.99, "eps": 1.0e-8}, {"s"}),
    ({"name": "adagrad", "eps": 1.0e-10}, {"G"}),
    ({"name": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1.0e-8}, {"m", "v"}),
], ids=["momentum", "nesterov", "rmsprop", "adagrad", "adam"])
def test_frozen_biases_have_no_state(optimizer, names):
    spec = small_spec(optimizer=optimizer, weight_decay=0.01)
    for layer in spec["layers"]:
        layer["train_bias"] = False
    weights = {f"W{l}[{i},{j}]" for l, layer in enumerate(spec["layers"], start=1)
               for i, row in enumerate(layer["weights"]) for j in range(len(row))}
    key = solve(spec)
    for step in key["steps"]:
        assert set(step["state"]) == names
        for name in names:
            assert set(step["state"][name]) == weights
        assert set(step["gradients"]) == set(step["updated"]) == weights
    assert not differences(key, torch_oracle.train(spec))


ADAM = {"name": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1.0e-8}
RMSPROP = {"name": "rmsprop", "alpha": 0.99, "eps": 1.0e-8}
MOMENTUM = {"name": "momentum", "momentum": 0.9, "nesterov": False}


@pytest.mark.parametrize("valid,invalid,field", [
    ({"optimizer": "sgd"}, {"optimizer": "nadam"}, "optimizer"),
    ({"optimizer": MOMENTUM}, {"optimizer": {"name": "lbfgs"}}, "optimizer"),
    ({"optimizer": MOMENTUM}, {"optimizer": {**MOMENTUM, "momentum": -0.1}}, "optimizer.momentum"),
    ({"optimizer": ADAM}, {"optimizer": {**ADAM, "beta1": 1.0}}, "optimizer.beta1"),
    ({"optimizer": ADAM}, {"optimizer": {**ADAM, "beta1": 1.5}}, "optimizer.beta1"),
    ({"optimizer": ADAM}, {"optimizer": {**ADAM, "beta2": 1.0}}, "optimizer.beta2"),
    ({"optimizer": ADAM}, {"optimizer": {**ADAM, "eps": 0.0}}, "optimizer.eps"),
    ({"optimizer": RMSPROP}, {"optimizer": {**RMSPROP, "eps": -1.0e-8}}, "optimizer.eps"),
    ({"weight_decay": 0.01}, {"weight_decay": -0.01}, "weight_decay"),
    ({"weight_decay": 0.01, "weight_decay_mode": "decoupled"}, {"weight_decay": 0.01, "weight_decay_mode": "l2"},
     "weight_decay_mode"),
], ids=["unknown-name", "unknown-name-mapping", "negative-momentum", "beta1-is-1", "beta1-above-1", "beta2-is-1",
        "adam-eps-0", "rmsprop-eps-negative", "negative-weight-decay", "unknown-weight-decay-mode"])
def test_bad_optimizer_fields_name_the_field(valid, invalid, field):
    derive.solve(small_spec(**valid))  # the same spec with a good value is accepted
    with pytest.raises(derive.SpecError) as caught:
        derive.solve(small_spec(**invalid))
    assert field in str(caught.value)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_built_in_examples_match_torch(name):
    """The shipped examples, whose documents are in outputs/, train as torch.optim does."""
    import yaml

    from derive.spec.examples import path

    spec = yaml.safe_load(path(name).read_text())
    assert not differences(solve(spec), torch_oracle.train(spec))
