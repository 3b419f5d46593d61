"""The classifiers, in one file: the paper's selu-LSTM and the variants the ablations compare.

Every model takes the feature vector ``x`` [N, F] (float32) and returns logits [N, 3] in
:data:`~emoblend.labels.CLASSES` order. Sequence models reshape ``x`` to [N, F, 1] inside
``forward`` -- one feature per time step, as the paper feeds its blendshape vector -- so the
exported ONNX graph keeps the plain [N, F] input the runtime classifier builds.

Two buffers ride along in every model and so in every exported graph:

* ``mean``/``scale``: input standardisation (identity for the faithful paper model);
* ``log_prior``: a per-class bias added to the logits, fitted on the validation split after
  training (see :func:`emoblend.train.loop.calibrate`) -- a decision threshold in the graph.

PyTorch's ``nn.LSTM`` has tanh fixed, while the author's Keras model uses selu for the
candidate and output activations, so the faithful model uses :class:`KerasLSTM`, a small
re-implementation of Keras' LSTM layer (gate order i, f, c, o; one bias; forget bias 1).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..errors import EmoblendError


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "lstm"  # lstm | gru | dense
    units: tuple[int, ...] = (52, 16, 48, 44)  # per layer (recurrent) or hidden widths (dense)
    activation: str = "selu"  # recurrent candidate/output activation, or the dense activation
    dropout: float = 0.0  # between layers (dense only; the paper's LSTM has none)
    standardize: bool = False  # fold train-set mean/std into the graph
    mirror: bool = False  # average with the left/right-mirrored face (see set_mirror)
    n_classes: int = 3

    def to_dict(self) -> dict:
        return {**asdict(self), "units": list(self.units)}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(**{**data, "units": tuple(data["units"])})


PRESETS: dict[str, ModelConfig] = {
    # The author's saved model: 4 stacked selu-LSTM layers then Dense(3); 44,631 parameters.
    "paper-lstm": ModelConfig(kind="lstm", units=(52, 16, 48, 44), activation="selu"),
    # The same shape with nn.LSTM (tanh): the fast recurrent variant (fused kernels).
    "lstm": ModelConfig(kind="lstm", units=(52, 16, 48, 44), activation="tanh"),
    "gru": ModelConfig(kind="gru", units=(52, 16, 48, 44), activation="tanh"),
    # Dense-only (the paper's ablation), standardised inputs: the fast shipped default.
    "dense": ModelConfig(
        kind="dense", units=(128, 64), activation="gelu", dropout=0.2, standardize=True
    ),
}

ACTIVATIONS = {
    "selu": F.selu,
    "tanh": torch.tanh,
    "relu": F.relu,
    "gelu": F.gelu,
    "elu": F.elu,
    "silu": F.silu,
}


class KerasLSTM(nn.Module):
    """One Keras-style LSTM layer with a free activation (Keras ``LSTM(units, activation=...)``).

    i, f, o = sigmoid gates; c' = act(candidate); c = f*c + i*c'; h = o * act(c).
    The input projection of all time steps is one matmul; only ``h @ U`` runs per step.
    """

    def __init__(self, n_in: int, units: int, activation: str = "selu") -> None:
        super().__init__()
        self.units = units
        self.act = ACTIVATIONS[activation]
        self.kernel = nn.Parameter(torch.empty(n_in, 4 * units))
        self.recurrent = nn.Parameter(torch.empty(units, 4 * units))
        self.bias = nn.Parameter(torch.zeros(4 * units))
        nn.init.xavier_uniform_(self.kernel)  # Keras: glorot_uniform
        for k in range(4):  # Keras: orthogonal, per gate block
            nn.init.orthogonal_(self.recurrent.data[:, k * units : (k + 1) * units])
        with torch.no_grad():
            self.bias[units : 2 * units] = 1.0  # Keras: unit_forget_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, T, in] -> [N, T, units]
        n, steps, _ = x.shape
        xw = x @ self.kernel + self.bias
        h = x.new_zeros(n, self.units)
        c = x.new_zeros(n, self.units)
        out = []
        for t in range(steps):
            z = xw[:, t] + h @ self.recurrent
            i, f, g, o = z.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * self.act(g)
            h = torch.sigmoid(o) * self.act(c)
            out.append(h)
        return torch.stack(out, dim=1)


class Classifier(nn.Module):
    """Feature vector [N, F] -> logits [N, 3]; see the module docstring."""

    def __init__(self, config: ModelConfig, n_features: int) -> None:
        super().__init__()
        self.config = config
        self.n_features = n_features
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("log_prior", torch.zeros(config.n_classes))
        if config.mirror:  # identity until set_mirror() names the features
            self.register_buffer("mirror_index", torch.arange(n_features))
        layers: list[nn.Module] = []
        n_in = 1 if config.kind in ("lstm", "gru") else n_features
        for units in config.units:
            if config.kind == "lstm" and config.activation != "tanh":
                layers.append(KerasLSTM(n_in, units, config.activation))
            elif config.kind == "lstm":
                layers.append(nn.LSTM(n_in, units, batch_first=True))
            elif config.kind == "gru":
                layers.append(nn.GRU(n_in, units, batch_first=True))
            elif config.kind == "dense":
                layers.append(nn.Linear(n_in, units))
            else:
                raise ValueError(f"unknown model kind {config.kind!r}; use lstm, gru or dense")
            n_in = units
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(n_in, config.n_classes)

    def set_mirror(self, names: list[str]) -> None:
        """Pair each blendshape with its mirror image (``...Left`` <-> ``...Right``).

        A horizontally flipped face swaps MediaPipe's left and right scores; averaging the
        logits of a face and its mirror makes the prediction symmetric by construction.
        Features beyond ``names`` (landmark features) map to themselves.
        """
        swapped = [
            n.replace("Left", "@").replace("Right", "Left").replace("@", "Right") for n in names
        ]
        index = [names.index(m) if m in names else i for i, m in enumerate(swapped)]
        index += list(range(len(names), self.n_features))
        self.mirror_index.copy_(torch.tensor(index))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.mirror:
            n = x.shape[0]
            both = self.logits(torch.cat([x, x[:, self.mirror_index]]))
            return (both[:n] + both[n:]) / 2 + self.log_prior
        return self.logits(x) + self.log_prior

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Raw logits, before the calibrated bias."""
        x = (x - self.mean) / self.scale
        if self.config.kind == "dense":
            act = ACTIVATIONS[self.config.activation]
            for layer in self.layers:
                x = F.dropout(act(layer(x)), self.config.dropout, self.training)
        else:
            x = x.unsqueeze(-1)  # [N, F] -> [N, F, 1]: one feature per time step
            for layer in self.layers:
                x = layer(x)
                x = x[0] if isinstance(x, tuple) else x  # nn.LSTM/GRU return (out, state)
            x = x[:, -1]  # last time step of the last layer (Keras return_sequences=False)
        return self.head(x)


class Probabilities(nn.Module):
    """The exported graph: logits -> softmax probabilities [N, 3]."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(features), dim=1)


def build_model(preset_or_config: str | ModelConfig, n_features: int, **overrides) -> Classifier:
    """A fresh model from a preset name (see :data:`PRESETS`) or a config."""
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown model {preset_or_config!r}; choose: {', '.join(PRESETS)}")
        preset_or_config = PRESETS[preset_or_config]
    return Classifier(replace(preset_or_config, **overrides), n_features)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_run(path: str | os.PathLike) -> tuple[Classifier, dict]:
    """The final model of a run folder (or a model.pt) and its metadata."""
    path = Path(path)
    file = path / "model.pt" if path.is_dir() else path
    if not file.is_file():
        raise EmoblendError(f"no trained model at {file}; run `emoblend train` first")
    try:
        data = torch.load(file, weights_only=False)
        model = build_model(ModelConfig.from_dict(data["model_config"]), data["n_features"])
        model.load_state_dict(data["model"])
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, TypeError,
            ValueError, AttributeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise EmoblendError(
            f"{file} is not a model saved by `emoblend train` ({first}); give a run folder "
            "or its model.pt"
        ) from None
    model.eval()
    return model, {k: v for k, v in data.items() if k != "model"}


__all__ = [
    "load_run",
    "PRESETS",
    "ModelConfig",
    "KerasLSTM",
    "Classifier",
    "Probabilities",
    "build_model",
    "count_parameters",
]
