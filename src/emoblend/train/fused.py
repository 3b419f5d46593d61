"""The fused classifier: a small CNN on the aligned face crop beside the landmark model's inputs.

WHY: geometry (52 blendshapes + 456 aligned landmark coordinates) and appearance (the grey
face crop: tears, brow texture, shading) carry different evidence -- a crying face's stretched
mouth reads as a smile to blendshapes, not to pixels. Each branch embeds its input, one head
reads the concatenated embeddings, and the whole thing is ONE ONNX graph with two inputs
(``features`` [N, F] float32 and ``crop`` [N, 1, S, S] float32 in [0, 1]), run by onnxruntime.

The model at a glance (config at the top of :class:`FusedConfig`):

* crop branch: per-crop standardisation (inside the graph: robust to exposure), a 3×3 stem
  with stride 2, then per stage a depthwise-separable block with stride 2 and one with stride
  1 (widths 32/64/128/256 by default), global average pooling. Depthwise-separable
  convolutions keep the whole graph at ~0.15 ms per face and view on one thread;
* feature branch: train-set standardisation (inside the graph), MLP 508-128-64, GELU, dropout;
* heads: FER2013's seven emotions and the paper's three classes, both trained at once (so one
  run gives the seven-class model, the three-class model and the seven-folded-to-three one),
  plus an auxiliary seven-class head per branch (training only) so that neither branch can
  lean on the other; the feature branch is also dropped for a whole sample at random.

Training (``train_fused``): SGD with Nesterov momentum, a linear warm-up then a cosine decay
driven by elapsed time (epoch times vary 2× on a shared machine, so a time budget finishes
reliably) or, with ``epochs``, by the step count (the same schedule on any machine), label
smoothing for FER2013's noisy labels, and on the crop: flip (with the
features mirrored exactly to match), rotation ±10°, scale ±10 %, shift ±8 %, random erasing.
After each epoch the validation split (PublicTest) is scored; the best epoch per exported head
is kept, and a per-class bias is then fitted on validation for accuracy + macro-F1 (inside the
graph). PrivateTest is never read here.

Export (:class:`Exported`): by default the graph reads each face twice in one batch, as seen
and mirrored, and averages the two readings before the bias (``flip_average``): it lifted
validation sad F1 by 0.04 for twice the CNN's work. :func:`reexport_fused` exports a finished
run's checkpoints again, e.g. with another ``flip_average``, without training.

Speed on a shared 2-core CPU: set ``OMP_WAIT_POLICY=PASSIVE`` (the CLI does): with the default
spin-waiting, two threads at load 15+ ran 30× slower than one. fp32 with channels-last memory
beat bfloat16 autocast here (depthwise convolutions gain nothing from bf16).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from .. import __version__
from ..classify.classifier import ModelInfo, table_features
from ..errors import DatasetError, EmoblendError
from ..face.blendshapes import BLENDSHAPE_NAMES
from ..face.model_file import sha256_of
from ..features.crop import CROP_ANCHORS, TEMPLATE
from ..features.landmarks import mirror_features
from ..features.table import crops_file, detected_mask, read_crops, read_table
from ..io.atomic import atomic_path, write_text
from ..labels import CLASSES, FER_EMOTIONS, fer_to_class
from ..progress import progress_bar

HEADS = ("3", "7", "fold")
"""What an exported graph outputs: the three-class head, the seven-class head, or the
seven-class head folded to three (happy, sad, the other five summed as unknown)."""
LANDMARKS = "contour-affine"
OPSET = 17


@dataclass(frozen=True)
class FusedConfig:
    crop_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)
    stem_stride: int = 2
    feature_units: tuple[int, ...] = (128, 64)
    dropout: float = 0.4  # feature MLP
    head_dropout: float = 0.3
    branch_drop: float = 0.2  # share of samples trained without the feature branch
    aux_weight: float = 0.3
    label_smoothing: float = 0.1
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    minutes: float = 55.0  # the time budget the schedule is drawn over
    epochs: int | None = None  # if set: the schedule is drawn over this many epochs instead
    warmup: float = 0.03  # share of the budget
    seed: int = 0
    threads: int = 2
    flip_average: bool = True  # the exported graph averages the face and its mirror image

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths),
                "feature_units": list(self.feature_units)}

    @classmethod
    def from_dict(cls, settings: dict) -> FusedConfig:
        """The inverse of :meth:`to_dict` (as a checkpoint or sidecar stores it)."""
        return cls(**{**settings, "widths": tuple(settings["widths"]),
                      "feature_units": tuple(settings["feature_units"])})


# ------------------------------------------------------------------------------ the model


def _separable(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CropNet(nn.Module):
    """Grey crop [N, 1, S, S] in [0, 1] -> embedding [N, widths[-1]]."""

    def __init__(self, widths: tuple[int, ...], stem_stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, widths[0], 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [_separable(c_in, c_out, 2), _separable(c_out, c_out, 1)]
        self.body = nn.Sequential(*layers)
        self.out_dim = widths[-1]

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        mean = crop.mean(dim=(2, 3), keepdim=True)
        std = crop.std(dim=(2, 3), keepdim=True) + 1e-3
        return self.body((crop - mean) / std).mean(dim=(2, 3))


class FusedNet(nn.Module):
    """(features [N, F], crop [N, 1, S, S]) -> (7-class logits, 3-class logits, aux, aux)."""

    def __init__(self, config: FusedConfig, n_features: int) -> None:
        super().__init__()
        self.config = config
        self.n_features = n_features
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("bias7", torch.zeros(len(FER_EMOTIONS)))
        self.register_buffer("bias3", torch.zeros(len(CLASSES)))
        self.cnn = CropNet(config.widths, config.stem_stride)
        layers: list[nn.Module] = []
        n_in = n_features
        for units in config.feature_units:
            layers += [nn.Linear(n_in, units), nn.GELU(), nn.Dropout(config.dropout)]
            n_in = units
        self.feat = nn.Sequential(*layers)
        width = self.cnn.out_dim + n_in
        self.drop = nn.Dropout(config.head_dropout)
        self.head7 = nn.Linear(width, len(FER_EMOTIONS))
        self.head3 = nn.Linear(width, len(CLASSES))
        self.aux_cnn = nn.Linear(self.cnn.out_dim, len(FER_EMOTIONS))
        self.aux_feat = nn.Linear(n_in, len(FER_EMOTIONS))

    def embed(self, features: torch.Tensor, crop: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.feat((features - self.mean) / self.scale), self.cnn(crop)

    def forward(self, features: torch.Tensor, crop: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f, c = self.embed(features, crop)
        if self.training and self.config.branch_drop > 0:
            keep = torch.rand(len(f), 1) >= self.config.branch_drop
            f = f * keep.to(f.dtype)
        e = self.drop(torch.cat([f, c], dim=1))
        return self.head7(e), self.head3(e), self.aux_cnn(c), self.aux_feat(f)


class Exported(nn.Module):
    """The shipped graph: (features, crop) -> probabilities of one head (see :data:`HEADS`),
    the calibrated bias and the softmax inside.

    With ``flip`` the graph also reads the mirrored face (features mirrored exactly, crop
    flipped) in the same batch and averages the two views' probabilities before the bias:
    on validation this lifted p5's folded head by 0.008 accuracy, 0.018 macro-F1 and 0.044
    "sad" F1, for twice the CNN's work (~0.13 ms more per face on one thread).

    WHY it is written out instead of reusing ``FusedNet.forward``: every ONNX node costs a
    few microseconds on a one-face batch, so the feature standardisation is folded into the
    first linear layer, the crop's standard deviation is one formula instead of the shape
    arithmetic ``torch.std`` exports, and folding seven classes to three is one matrix
    product.
    """

    def __init__(self, net: FusedNet, head: str, flip: bool = False) -> None:
        super().__init__()
        if head not in HEADS:
            raise EmoblendError(f"head {head!r} is not one of {', '.join(HEADS)}")
        self.net, self.head, self.flip = net, head, flip
        self.feat = copy.deepcopy(net.feat)
        first = self.feat[0]
        with torch.no_grad():  # W((x - mean) / scale) + b == (W / scale) x + (b - W mean / scale)
            weight = first.weight / net.scale
            first.bias.copy_(first.bias - weight @ net.mean)
            first.weight.copy_(weight)
        index, sign = mirror_map(net.n_features)
        self.register_buffer("mirror_index", torch.from_numpy(index))
        self.register_buffer("mirror_sign", torch.from_numpy(sign))
        self.register_buffer("fold", torch.from_numpy(FOLD_MATRIX))
        self.pixels = net.config.crop_size ** 2

    def forward(self, features: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
        if self.flip:
            features = torch.cat([features, features[:, self.mirror_index] * self.mirror_sign])
            crop = torch.cat([crop, crop.flip(3)])
        mean = crop.mean(dim=(2, 3), keepdim=True)
        variance = (crop * crop).mean(dim=(2, 3), keepdim=True) - mean * mean
        std = torch.sqrt(variance.clamp_min(0) * (self.pixels / (self.pixels - 1))) + 1e-3
        c = self.net.cnn.body((crop - mean) / std).mean(dim=(2, 3))
        e = torch.cat([self.feat(features), c], dim=1)
        head = self.net.head3 if self.head == "3" else self.net.head7
        p = torch.softmax(head(e), dim=1)
        if self.flip:
            n = p.shape[0] // 2
            p = (p[:n] + p[n:]) / 2
        if self.head == "fold":
            p = p @ self.fold
        bias = self.net.bias7 if self.head == "7" else self.net.bias3
        return torch.softmax(torch.log(p + 1e-8) + bias, dim=1)


# ------------------------------------------------------------------------------ data


@dataclass
class FusedData:
    x_train: np.ndarray
    c_train: np.ndarray
    y_train: np.ndarray  # FER codes 0-6
    x_val: np.ndarray
    c_val: np.ndarray
    y_val: np.ndarray
    sha256: dict = field(default_factory=dict)


def load_fused_data(table_path: str | os.PathLike, crops_path: str | os.PathLike | None = None
                    ) -> FusedData:
    """Train rows (every detected one, augmented copies included) and validation rows
    (detected originals) of a ``dataset build --landmarks --crops S`` output, with crops."""
    table_path = Path(table_path)
    crops_path = crops_file(table_path, crops_path)
    table = read_table(table_path)
    found = detected_mask(table)
    original = (table["augmentation"] == "none").to_numpy()
    info = ModelInfo(name="training", blendshapes=BLENDSHAPE_NAMES, landmarks=LANDMARKS)
    parts = {}
    for split, rows in (("train", found), ("val", found & original)):
        mask = rows & (table["split"] == split).to_numpy()
        if not mask.any():
            raise DatasetError(f"{table_path} has no detected faces in its {split!r} split")
        parts[split] = (
            table_features(info, table[mask]),
            read_crops(table_path, np.flatnonzero(mask), crops_path),
            table.loc[mask, "emotion"].to_numpy(np.int64),
        )
    return FusedData(*parts["train"], *parts["val"],
                     sha256={"table": sha256_of(table_path), "crops": sha256_of(crops_path)})


_MIRROR_BLENDSHAPES = np.array([
    BLENDSHAPE_NAMES.index(n.replace("Left", "@").replace("Right", "Left").replace("@", "Right"))
    for n in BLENDSHAPE_NAMES
])


def mirror_inputs(features: np.ndarray) -> np.ndarray:
    """The features of the mirrored face: left/right blendshapes swapped, landmarks mirrored."""
    return np.concatenate(
        [features[:, :52][:, _MIRROR_BLENDSHAPES], mirror_features(features[:, 52:])], axis=1
    ).astype(np.float32)


def mirror_map(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mirror_inputs` as a gather and a sign: mirrored = features[:, index] * sign."""
    probe = mirror_inputs(np.arange(1, n_features + 1, dtype=np.float32)[None])[0]
    return (np.abs(probe).round().astype(np.int64) - 1), np.sign(probe).astype(np.float32)


FOLD_MATRIX = np.zeros((len(FER_EMOTIONS), len(CLASSES)), dtype=np.float32)
"""Seven-class probabilities @ FOLD_MATRIX = (happy, unknown, sad): the five others summed."""
FOLD_MATRIX[np.arange(len(FER_EMOTIONS)), fer_to_class(np.arange(len(FER_EMOTIONS)))] = 1.0


def augment_crops(crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotation ±10°, scale ±10 %, shift ±8 %, then random erasing (p 0.5, 2-20 % of the area,
    filled with noise) on a batch [B, 1, S, S] in [0, 1]."""
    b, size = crops.shape[0], crops.shape[-1]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=generator)

    angle, scale = uniform(-math.radians(10), math.radians(10)), uniform(0.9, 1.1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, uniform(-0.16, 0.16)], 1),
                         torch.stack([sin, cos, uniform(-0.16, 0.16)], 1)], 1)
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    crops = F.grid_sample(crops, grid, mode="bilinear", padding_mode="border",
                          align_corners=False)
    area = uniform(0.02, 0.2) * size * size
    aspect = torch.exp(uniform(-math.log(3.3), math.log(3.3)))
    h = (area * aspect).sqrt().clamp(1, size - 1).long()
    w = (area / aspect).sqrt().clamp(1, size - 1).long()
    y0 = (torch.rand(b, generator=generator) * (size - h)).long()
    x0 = (torch.rand(b, generator=generator) * (size - w)).long()
    ys, xs = torch.arange(size).view(1, size, 1), torch.arange(size).view(1, 1, size)
    erase = (torch.rand(b, generator=generator) < 0.5).view(b, 1, 1)
    box = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + h).view(b, 1, 1))
           & (xs >= x0.view(b, 1, 1)) & (xs < (x0 + w).view(b, 1, 1)))
    noise = torch.rand(crops.shape, generator=generator)
    return torch.where((erase & box).unsqueeze(1), noise, crops)


# ------------------------------------------------------------------------------ scoring


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def figures(y: np.ndarray, pred: np.ndarray, k: int) -> dict:
    """Accuracy, macro-F1, per-class F1 and the confusion matrix (rows truth)."""
    cm = confusion(y, pred, k)
    tp = np.diag(cm).astype(float)
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
    return {"accuracy": float(tp.sum() / max(len(y), 1)), "macro_f1": float(f1.mean()),
            "f1": [round(float(v), 4) for v in f1], "confusion_matrix": cm.tolist()}


def fit_bias(log_probs: np.ndarray, y: np.ndarray, reference: int,
             span: float = 2.0, step: float = 0.05, rounds: int = 3) -> np.ndarray:
    """Per-class bias maximising accuracy + macro-F1 on validation, one class at a time
    (coordinate ascent; ``reference`` stays 0: softmax ignores a common shift)."""
    k = log_probs.shape[1]
    grid = np.arange(-span, span + step / 2, step)

    def value(bias: np.ndarray) -> float:
        r = figures(y, (log_probs + bias).argmax(1), k)
        return r["accuracy"] + r["macro_f1"]

    bias = np.zeros(k)
    best = value(bias)
    for _ in range(rounds):
        for c in range(k):
            if c == reference:
                continue
            for g in grid:
                trial = bias.copy()
                trial[c] = g
                v = value(trial)
                if v > best + 1e-12:
                    best, bias = v, trial
    return bias.astype(np.float32)


def head_log_probs(net: FusedNet, features: np.ndarray, crops: np.ndarray, head: str,
                   batch: int = 512, flip: bool = False) -> np.ndarray:
    """Uncalibrated log-probabilities of one head (fold: the folded seven-class ones); with
    ``flip``, of the probabilities averaged over the face and its mirror image (as the
    exported graph with ``flip`` computes them)."""
    net.eval()
    fold = torch.from_numpy(FOLD_MATRIX)
    views = [(features, crops)]
    if flip:
        views.append((mirror_inputs(features), crops[:, :, ::-1]))
    total = None
    with torch.no_grad():
        for feats, imgs in views:
            out = []
            for i in range(0, len(feats), batch):
                x = torch.from_numpy(np.ascontiguousarray(feats[i : i + batch]))
                c = torch.from_numpy(np.ascontiguousarray(imgs[i : i + batch])).float() / 255
                l7, l3, _, _ = net(x, c.unsqueeze(1).contiguous(memory_format=torch.channels_last))
                p = torch.softmax(l3 if head == "3" else l7, 1)
                out.append(p @ fold if head == "fold" else p)
            p = torch.cat(out)
            total = p if total is None else total + p
    return torch.log(total / len(views) + 1e-8).numpy()


def head_targets(y7: np.ndarray, head: str) -> np.ndarray:
    return y7 if head == "7" else np.asarray(fer_to_class(y7))


# ------------------------------------------------------------------------------ training


@dataclass
class FusedResult:
    net: FusedNet
    history: list[dict]
    best_epoch: dict
    seconds: float


def train_fused(data: FusedData, config: FusedConfig, *, progress: bool = True,
                log=print) -> FusedResult:  # noqa: ANN001 - a print-like callable
    """Train for ``config.minutes`` of wall time (or ``config.epochs`` epochs); returns the
    net with, per head, the state of its best validation epoch (accuracy + macro-F1) in
    ``net.best_states``."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    gen = torch.Generator().manual_seed(config.seed)
    net = FusedNet(config, data.x_train.shape[1]).to(memory_format=torch.channels_last)
    x = torch.from_numpy(data.x_train)
    x_mirror = torch.from_numpy(mirror_inputs(data.x_train))
    crops = torch.from_numpy(data.c_train)
    y7 = torch.tensor(data.y_train, dtype=torch.int64)  # a copy: the table array is read-only
    y3 = torch.from_numpy(np.asarray(fer_to_class(data.y_train), np.int64))
    net.mean.copy_(x.mean(0))
    net.scale.copy_(x.std(0).clamp_min(1e-6))
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                          nesterov=True, weight_decay=config.weight_decay)
    steps = len(x) // config.batch_size
    if steps < 1:
        raise DatasetError(f"{len(x)} training rows are fewer than one batch")
    # The schedule's clock: seconds of wall time, or (with config.epochs) steps taken.
    budget = config.epochs * steps if config.epochs else config.minutes * 60
    warm = config.warmup * budget
    taken = 0
    best: dict[str, tuple[float, int, dict]] = {h: (-1.0, 0, {}) for h in HEADS}
    history: list[dict] = []
    start = time.perf_counter()
    bar = progress_bar(enabled=progress, transient=True)
    with bar:
        task = bar.add_task("training the fused model", total=budget)
        unit = (lambda: taken) if config.epochs else (lambda: time.perf_counter() - start)
        epoch, done = 0, False
        while not done:
            epoch += 1
            net.train()
            order = torch.randperm(len(x), generator=gen)
            loss_sum, n = 0.0, 0
            for b in range(steps):
                elapsed = unit()
                if elapsed >= budget:
                    done = True
                    break
                lr = config.lr * (elapsed / warm if elapsed < warm else 0.5 * (
                    1 + math.cos(math.pi * (elapsed - warm) / (budget - warm))))
                taken += 1
                for group in opt.param_groups:
                    group["lr"] = lr
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip.unsqueeze(1), x_mirror[idx], x[idx])
                cb = crops[idx].float().unsqueeze(1) / 255
                cb = torch.where(flip.view(-1, 1, 1, 1), cb.flip(3), cb)
                cb = augment_crops(cb, gen).contiguous(memory_format=torch.channels_last)
                l7, l3, lc, lf = net(xb, cb)
                ce = lambda logits, y: F.cross_entropy(  # noqa: E731
                    logits, y, label_smoothing=config.label_smoothing)
                loss = ce(l7, y7[idx]) + ce(l3, y3[idx]) + config.aux_weight * (
                    ce(lc, y7[idx]) + ce(lf, y7[idx]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach())
                n += 1
                bar.update(task, completed=min(elapsed, budget))
            done = done or bool(config.epochs and epoch >= config.epochs)
            row = {"epoch": epoch, "seconds": round(time.perf_counter() - start, 1),
                   "loss": loss_sum / max(n, 1), "load_average": os.getloadavg()[0]}
            for head in HEADS:
                lp = head_log_probs(net, data.x_val, data.c_val, head)
                r = figures(head_targets(data.y_val, head), lp.argmax(1), lp.shape[1])
                row[f"val{head}_accuracy"], row[f"val{head}_macro_f1"] = (
                    r["accuracy"], r["macro_f1"])
                value = r["accuracy"] + r["macro_f1"]
                if value > best[head][0]:
                    best[head] = (value, epoch, {k: v.clone() for k, v in
                                                 net.state_dict().items()})
            history.append(row)
            log(json.dumps(row))
    net.best_states = {h: best[h][2] for h in HEADS}
    return FusedResult(net, history, {h: best[h][1] for h in HEADS},
                       time.perf_counter() - start)


def calibrated(net: FusedNet, state: dict, data: FusedData, head: str) -> tuple[FusedNet, dict]:
    """``net`` with ``state`` loaded and ``head``'s bias fitted on validation (on the
    flip-averaged probabilities when ``net.config.flip_average``); its figures."""
    net.load_state_dict(state)
    net.bias7.zero_()
    net.bias3.zero_()
    lp = head_log_probs(net, data.x_val, data.c_val, head, flip=net.config.flip_average)
    y = head_targets(data.y_val, head)
    raw = figures(y, lp.argmax(1), lp.shape[1])
    bias = fit_bias(lp, y, reference=6 if head == "7" else CLASSES.index("unknown"))
    (net.bias7 if head == "7" else net.bias3).copy_(torch.from_numpy(bias))
    return net, {"val": figures(y, (lp + bias).argmax(1), lp.shape[1]),
                 "val_uncalibrated": raw, "bias": bias.tolist()}


# ------------------------------------------------------------------------------ export


def export_fused(net: FusedNet, head: str, path: str | os.PathLike) -> float:
    """Write the graph of ``head``; returns the largest |onnxruntime - PyTorch| on a probe."""
    import onnxruntime as ort

    model = Exported(net.eval(), head, flip=net.config.flip_average).eval()
    size = net.config.crop_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, net.n_features)).astype(np.float32)
    c = rng.random((8, 1, size, size)).astype(np.float32)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.from_numpy(x[:2]), torch.from_numpy(c[:2])), str(tmp),
            input_names=["features", "crop"], output_names=["probabilities"],
            opset_version=OPSET, dynamo=False,
            dynamic_axes={"features": {0: "N"}, "crop": {0: "N"}, "probabilities": {0: "N"}},
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": x, "crop": c})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x), torch.from_numpy(c)).numpy()
    return float(np.abs(got - want).max())


def fused_sidecar(name: str, net: FusedNet, head: str, report: dict, seconds: float,
                  sha256: dict, version: str) -> dict:
    """The JSON sidecar :class:`emoblend.classify.classifier.ModelInfo` reads."""
    classes = list(FER_EMOTIONS) if head == "7" else list(CLASSES)
    return {
        "name": name,
        "version": version,
        "classes": classes,
        "inputs": {
            "blendshapes": list(BLENDSHAPE_NAMES),
            "landmarks": LANDMARKS,
            "crop": {"size": net.config.crop_size, "anchors": list(CROP_ANCHORS),
                     "template": np.round(TEMPLATE, 5).tolist(),
                     "function": "emoblend.features.crop.aligned_crop (grey, uint8 / 255)"},
        },
        "input_name": "features",
        "input_names": ["features", "crop"],
        "output_name": "probabilities",
        "head": head,
        "preprocessing": [
            "features: the 52 blendshapes, then landmark features 'contour-affine'",
            "crop: emoblend.features.crop.aligned_crop(frame, landmarks, size) / 255",
            "standardisation, the crop's per-image normalisation, "
            + ("the average over the face and its mirror image, "
               if net.config.flip_average else "")
            + f"the calibrated bias {np.round(report['bias'], 3).tolist()} and the softmax: "
            "inside the graph",
        ],
        "architecture": {"kind": "fused", **net.config.to_dict()},
        "parameters": sum(p.numel() for p in net.parameters()),
        "training": {"seconds": round(seconds, 1), "config": net.config.to_dict()},
        "training_data_sha256": sha256.get("table"),
        "crops_sha256": sha256.get("crops"),
        "metrics": {k: v for k, v in report.items() if k != "bias"},
        "opset": OPSET,
        "emoblend_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def run_fused(table: str | os.PathLike, out: str | os.PathLike, config: FusedConfig,
              *, crops: str | os.PathLike | None = None, heads: tuple[str, ...] = HEADS,
              name: str = "fused", progress: bool = True, log=print) -> dict:  # noqa: ANN001
    """Table -> training -> one calibrated ONNX + sidecar + checkpoint per head in ``out``;
    returns the sidecars by head. ``out`` also gets ``log.jsonl`` (one line per epoch)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = _checked_data(table, crops, config)
    result = train_fused(data, config, progress=progress, log=log)
    write_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in result.history))
    return {head: _export_head(result.net, result.net.best_states[head], head, data, out, name,
                               result.best_epoch[head], result.seconds) for head in heads}


def reexport_fused(run: str | os.PathLike, table: str | os.PathLike,
                   out: str | os.PathLike | None = None, *,
                   crops: str | os.PathLike | None = None, heads: tuple[str, ...] = HEADS,
                   name: str = "fused", flip_average: bool = True) -> dict:
    """Calibrate and export again the checkpoints (``NAME-<head>.pt``) of an earlier
    :func:`run_fused` into ``out`` (default: the run folder), without training.

    WHY: the graph's form can change after a model is trained (flip averaging came after
    the shipped run); the trained weights need not.
    """
    run = Path(run)
    out = Path(out) if out is not None else run
    out.mkdir(parents=True, exist_ok=True)
    sidecars, data = {}, None
    for head in heads:
        checkpoint = run / f"{name}-{head}.pt"
        if not checkpoint.is_file():
            raise DatasetError(f"{checkpoint} is missing; give a folder `train-fused` wrote")
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        config = FusedConfig.from_dict({**saved["config"], "flip_average": flip_average})
        data = data or _checked_data(table, crops, config)
        earlier = run / f"{name}-{head}.json"
        training = json.loads(earlier.read_text()) if earlier.is_file() else {}
        net = FusedNet(config, saved["n_features"])
        sidecars[head] = _export_head(
            net, saved["state"], head, data, out, name,
            training.get("metrics", {}).get("best_epoch"),
            training.get("training", {}).get("seconds", float("nan")))
    return sidecars


def _checked_data(table: str | os.PathLike, crops: str | os.PathLike | None,
                  config: FusedConfig) -> FusedData:
    data = load_fused_data(table, crops)
    if data.c_train.shape[1] != config.crop_size:
        raise DatasetError(
            f"the crops are {data.c_train.shape[1]} px; the config asks for {config.crop_size}"
        )
    return data


def _export_head(net: FusedNet, state: dict, head: str, data: FusedData, out: Path, name: str,
                 best_epoch: int | None, seconds: float) -> dict:
    """Calibrate ``state`` for ``head``; write NAME-<head>.onnx, .json and .pt atomically."""
    net, report = calibrated(net, state, data, head)
    report["best_epoch"] = best_epoch
    path = out / f"{name}-{head}.onnx"
    error = export_fused(net, head, path)
    if error > 1e-4:
        path.unlink(missing_ok=True)
        raise EmoblendError(f"ONNX output differs from PyTorch by {error:.2e}")
    side = fused_sidecar(f"{name}-{head}", net, head, report, seconds, data.sha256, __version__)
    side["round_trip_max_abs_error"] = error
    side["file_bytes"] = path.stat().st_size
    write_text(path.with_suffix(".json"), json.dumps(side, indent=1) + "\n")
    with atomic_path(out / f"{name}-{head}.pt") as tmp:
        torch.save({"state": net.state_dict(), "config": net.config.to_dict(),
                    "n_features": net.n_features}, tmp)
    return side


__all__ = ["FOLD_MATRIX", "FusedConfig", "FusedNet", "HEADS", "run_fused", "reexport_fused",
           "train_fused", "load_fused_data", "mirror_map",
           "export_fused", "fit_bias", "figures", "mirror_inputs", "augment_crops"]
