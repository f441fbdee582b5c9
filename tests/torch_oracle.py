"""An independent oracle for derive's training runs, in PyTorch float64.

Nothing here imports derive. The network is rebuilt from the spec dict as tensors, the
forward pass and the loss are written from the README's definitions, `loss.backward()`
gives the gradient, and the update is made by the real `torch.optim` optimizer:

- sgd (no `optimizer` field, `optimizer: sgd`): `SGD(lr)`;
- momentum: `SGD(lr, momentum=μ, nesterov=…, dampening=0)`, state `momentum_buffer` → "v";
- rmsprop: `RMSprop(lr, alpha, eps)` (no momentum, not centered), state `square_avg` → "s";
- adagrad: `Adagrad(lr, lr_decay=0, initial_accumulator_value=0, eps)`, state `sum` → "G";
- adam: `Adam(lr, betas, eps)` (no amsgrad), state `exp_avg` → "m", `exp_avg_sq` → "v";
  decoupled weight decay: `AdamW`.

Weight decay λ touches weights only: biases are in a parameter group of their own with
`weight_decay=0`. Coupled (default): the weights' group has `weight_decay=λ`, the
reported loss gains (λ/2)·Σ w² and the reported gradient is autograd's gradient of that
loss. Decoupled: `AdamW` for adam; for the others the weights are multiplied by (1 − ηλ)
after the gradient was taken and before the optimizer's step; loss and gradient are the
data term's.

`train(spec)` returns a record shaped like derive's JSON key (`steps`, `final`), every
value a Python float.
"""

from __future__ import annotations

import torch

DTYPE = torch.float64
STATE_NAMES = {
    "sgd": {}, "momentum": {"v": "momentum_buffer"}, "rmsprop": {"s": "square_avg"}, "adagrad": {"G": "sum"},
    "adam": {"m": "exp_avg", "v": "exp_avg_sq"},
}


def optimizer_config(spec: dict) -> dict:
    """The spec's optimizer as a dict with a lower-case `name`."""
    raw = spec.get("optimizer", "sgd")
    config = {"name": raw} if isinstance(raw, str) else dict(raw)
    config["name"] = config["name"].lower()
    return config


class Network:
    """The spec's layers as float64 tensors: W (units × fan-in), b (units,), a shared b (a
    0-d tensor) or none. Trainable tensors require grad; frozen biases do not."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.layers = []  # (activation, alpha, W, b, bias kind)
        self.named = []  # (tensor, [(JSON key, index)], is weight): trainable tensors only
        for l, layer in enumerate(spec["layers"], start=1):
            W = torch.tensor(layer["weights"], dtype=DTYPE, requires_grad=True)
            self.named.append((W, [(f"W{l}[{i},{j}]", (i, j)) for i in range(W.shape[0]) for j in range(W.shape[1])], True))
            bias = layer.get("bias")
            trainable = layer.get("train_bias", True)
            if bias is None:
                b, kind = None, "none"
            elif isinstance(bias, list):
                b, kind = torch.tensor(bias, dtype=DTYPE, requires_grad=trainable), "list"
                if trainable:
                    self.named.append((b, [(f"b{l}[{i}]", (i,)) for i in range(len(bias))], False))
            else:
                b, kind = torch.tensor(float(bias), dtype=DTYPE, requires_grad=trainable), "shared"
                if trainable:
                    self.named.append((b, [(f"b{l}", ())], False))
            self.layers.append((layer["activation"].lower(), float(layer.get("alpha", 0.01)), W, b, kind))

    def weights(self) -> list[torch.Tensor]:
        return [t for t, _, is_weight in self.named if is_weight]

    def biases(self) -> list[torch.Tensor]:
        return [t for t, _, is_weight in self.named if not is_weight]

    def values(self, tensors=None) -> dict[str, float]:
        """JSON key → value of every trainable parameter (or of the given tensors, one per
        trainable tensor in the same order)."""
        tensors = tensors if tensors is not None else [t for t, _, _ in self.named]
        return {key: float(t.detach()[index]) for t, (_, keys, _) in zip(tensors, self.named) for key, index in keys}

    def forward(self, x: list) -> tuple[dict, torch.Tensor]:
        a = torch.tensor(x if isinstance(x, list) else [x], dtype=DTYPE)
        record = {}
        for l, (activation, alpha, W, b, kind) in enumerate(self.layers, start=1):
            z = W @ a
            if b is not None:
                z = z + b
            if activation == "linear":
                a = z
            elif activation == "relu":
                a = torch.relu(z)
            elif activation == "leaky_relu":
                a = torch.nn.functional.leaky_relu(z, alpha)
            elif activation == "sigmoid":
                a = torch.sigmoid(z)
            elif activation == "tanh":
                a = torch.tanh(z)
            elif activation == "softmax":
                a = torch.softmax(z, dim=0)
            else:
                raise AssertionError(activation)
            for i in range(z.shape[0]):
                record[f"z{l}[{i}]"] = float(z[i].detach())
                record[f"a{l}[{i}]"] = float(a[i].detach())
        return record, a

    def sample_loss(self, prediction: torch.Tensor, y: list) -> torch.Tensor:
        y = torch.tensor(y, dtype=DTYPE)
        k = prediction.shape[0]
        name = self.spec["loss"].lower()
        if name == "half_sse":
            return ((y - prediction) ** 2).sum() / 2
        if name == "sse":
            return ((y - prediction) ** 2).sum()
        if name == "mse":
            return ((y - prediction) ** 2).sum() / k
        if name == "bce":
            return -(y * torch.log(prediction) + (1 - y) * torch.log(1 - prediction)).sum() / k
        if name == "cross_entropy":
            hot = y != 0
            return -(y[hot] * torch.log(prediction[hot])).sum()
        raise AssertionError(name)

    def data_loss(self, samples: list[dict]) -> tuple[torch.Tensor, list[dict]]:
        """The data term over the samples (mean or sum) and each sample's forward record."""
        losses, records = [], []
        for sample in samples:
            record, prediction = self.forward(sample["x"])
            loss = self.sample_loss(prediction, sample["y"])
            record["loss"] = float(loss.detach())
            losses.append(loss)
            records.append(record)
        total = torch.stack(losses).sum()
        return (total / len(losses) if self.spec.get("batch", "mean").lower() == "mean" else total), records

    def penalty(self, decay: float) -> torch.Tensor:
        """(λ/2)·Σ w² over every weight of every layer."""
        return decay / 2 * sum((W**2).sum() for W in self.weights())


def make_optimizer(net: Network, config: dict, rate: float, decay: float, decoupled: bool) -> torch.optim.Optimizer:
    name = config["name"]
    adamw = name == "adam" and decoupled
    coupled_decay = decay if (decay and not decoupled) or adamw else 0.0
    groups = [{"params": net.weights(), "weight_decay": coupled_decay}]
    if net.biases():
        groups.append({"params": net.biases(), "weight_decay": 0.0})
    if name == "sgd":
        return torch.optim.SGD(groups, lr=rate, momentum=0.0, dampening=0.0, nesterov=False, foreach=False)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=rate, momentum=float(config["momentum"]), dampening=0.0,
                               nesterov=bool(config.get("nesterov", False)), foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=rate, alpha=float(config["alpha"]), eps=float(config["eps"]),
                                   momentum=0.0, centered=False, foreach=False)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=rate, lr_decay=0.0, initial_accumulator_value=0.0, eps=float(config["eps"]),
                                   foreach=False)
    if name == "adam":
        kind = torch.optim.AdamW if adamw else torch.optim.Adam
        return kind(groups, lr=rate, betas=(float(config["beta1"]), float(config["beta2"])), eps=float(config["eps"]),
                    amsgrad=False, foreach=False)
    raise AssertionError(name)


def train(spec: dict) -> dict:
    """The training run the spec asks for, as a record shaped like derive's JSON key."""
    config = optimizer_config(spec)
    net = Network(spec)
    rate = float(spec["learning_rate"])
    decay = float(spec.get("weight_decay", 0))
    decoupled = spec.get("weight_decay_mode", "coupled").lower() == "decoupled"
    optimizer = make_optimizer(net, config, rate, decay, decoupled)
    data = spec["data"]
    batches = [data] if spec.get("update", "batch").lower() == "batch" else [[s] for s in data]
    params = [t for t, _, _ in net.named]
    names = STATE_NAMES[config["name"]]

    def combined(samples):
        data_term, records = net.data_loss(samples)
        total = data_term + net.penalty(decay) if decay and not decoupled else data_term
        return total, data_term, records

    steps = []
    for _ in range(spec.get("steps", 1)):
        for samples in batches:
            optimizer.zero_grad(set_to_none=True)
            total, data_term, records = combined(samples)
            # the gradient the update uses: autograd's, of the loss with the penalty when coupled
            reported = torch.autograd.grad(total, params, retain_graph=True)
            # the optimizer sees the data gradient; torch adds λw itself (weight_decay=λ)
            data_term.backward()
            if decay and decoupled and config["name"] != "adam":
                with torch.no_grad():
                    for W in net.weights():
                        W.mul_(1 - rate * decay)
            optimizer.step()
            step = {"forward": records, "loss": float(total.detach()), "gradients": net.values(reported), "updated": net.values()}
            if decay:
                step["loss_data"] = float(data_term.detach())
            if names:
                step["state"] = {
                    short: net.values([optimizer.state[p][long] for p in params]) for short, long in names.items()
                }
            steps.append(step)
    with torch.no_grad():
        total, data_term, records = combined(data)
    final = {"forward": records, "loss": float(total)}
    if decay:
        final["loss_data"] = float(data_term)
    return {"steps": steps, "final": final}
