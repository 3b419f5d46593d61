"""Run a shipped or exported emotion classifier with ONNX Runtime (no PyTorch needed).

A classifier is two files side by side: ``NAME.onnx`` and ``NAME.json``. The JSON sidecar
says what the model expects and how it was made: the blendshape names it reads (a subset of
the 52, in order), whether it also needs landmark features and which preprocessing builds
them, the class order, a hash of the training data, its measured metrics and its version.
The ONNX graph takes one float32 input ``features`` of shape [N, F] and returns
probabilities [N, C] in the order of the sidecar's ``classes``: the paper's three
(:data:`~emoblend.labels.CLASSES`) or FER2013's seven (:data:`~emoblend.labels.FER_EMOTIONS`).
A model whose sidecar declares ``inputs.crop`` (the fused models) takes a second input
``crop`` [N, 1, S, S] float32 in [0, 1]: the aligned grey face crop of
:mod:`emoblend.features.crop`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ClassifierError
from ..face.blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES
from ..features.crop import aligned_crops
from ..features.landmarks import LANDMARK_PREPROCESSING
from ..labels import CLASSES, label_set_name

DEFAULT_MODEL = "fused"
"""The name :func:`load_classifier` loads when given none (see assets/)."""


@dataclass(frozen=True)
class ModelInfo:
    """The JSON sidecar of a classifier, as plain data."""

    name: str
    blendshapes: tuple[str, ...]
    classes: tuple[str, ...] = CLASSES
    landmarks: str | None = None
    """Name of the landmark preprocessing (see :mod:`emoblend.features.landmarks`), or None."""
    crop_size: int | None = None
    """Side of the aligned face crop the model also reads (:mod:`emoblend.features.crop`),
    or None for models that read blendshapes (and landmarks) only."""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: dict) -> ModelInfo:
        try:
            info = cls(
                name=str(data["name"]),
                blendshapes=tuple(data["inputs"]["blendshapes"]),
                classes=tuple(data.get("classes", CLASSES)),
                landmarks=data["inputs"].get("landmarks"),
                crop_size=(data["inputs"].get("crop") or {}).get("size"),
                raw=data,
            )
        except (KeyError, TypeError) as exc:
            raise ClassifierError(f"classifier sidecar lacks {exc}; re-export the model") from None
        unknown = [n for n in info.blendshapes if n not in BLENDSHAPE_NAMES]
        if unknown:
            raise ClassifierError(
                f"classifier sidecar names unknown blendshapes {unknown}; "
                "expected MediaPipe's names"
            )
        try:
            label_set_name(info.classes)
        except ValueError as exc:
            raise ClassifierError(f"classifier sidecar: {exc}") from None
        return info


@functools.lru_cache(maxsize=64)
def _columns(names: tuple[str, ...]) -> np.ndarray:
    """Positions of ``names`` among the 52 (cached: the live path calls this every frame)."""
    return np.array([BLENDSHAPE_NAMES.index(n) for n in names], dtype=np.intp)


def build_features(
    info: ModelInfo,
    blendshapes: np.ndarray,
    landmarks: np.ndarray | None = None,
    matrices: np.ndarray | None = None,
) -> np.ndarray:
    """A model's [N, F] input: its selected blendshapes, then its landmark features if any.

    The one place features are built, so training, evaluation and the live path agree.
    """
    scores = np.asarray(blendshapes, dtype=np.float32)
    if scores.ndim == 1:
        scores = scores[None, :]
    if scores.ndim != 2 or scores.shape[1] != NUM_BLENDSHAPES:
        raise ClassifierError(
            f"blendshapes have shape {np.shape(blendshapes)}; expected [52] or [N, 52] "
            "in MediaPipe order (emoblend.BLENDSHAPE_NAMES)"
        )
    if not np.isfinite(scores).all():
        raise ClassifierError("blendshapes contain NaN or infinity; drop undetected faces first")
    parts = [scores[:, _columns(info.blendshapes)]]
    if info.landmarks is not None:
        if landmarks is None or matrices is None:
            raise ClassifierError(
                f"classifier {info.name!r} needs landmarks and transformation matrices; "
                "build the table with --landmarks or choose a blendshape-only model"
            )
        if info.landmarks not in LANDMARK_PREPROCESSING:
            raise ClassifierError(
                f"classifier {info.name!r} needs landmark preprocessing {info.landmarks!r}, "
                "which this emoblend version lacks; upgrade emoblend or re-export the model"
            )
        build = LANDMARK_PREPROCESSING[info.landmarks]
        parts.append(
            build(
                np.asarray(landmarks, np.float32).reshape(len(scores), -1, 3),
                np.asarray(matrices, np.float32).reshape(len(scores), 4, 4),
            )
        )
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def table_features(info: ModelInfo, table) -> np.ndarray:  # noqa: ANN001 - a pandas DataFrame
    """A model's [N, F] input from feature-table rows (every blendshape present)."""
    from ..features.table import LANDMARK_COLUMNS, MATRIX_COLUMNS, has_landmarks

    scores = table[list(BLENDSHAPE_NAMES)].to_numpy(np.float32)
    if info.landmarks is None:
        return build_features(info, scores)
    if not has_landmarks(table):
        raise ClassifierError(
            f"classifier {info.name!r} needs landmark columns (lm0_x ... m33), which the table "
            "lacks; build it with `dataset build --landmarks` or use a blendshape-only model "
            "(--model blend-mlp)"
        )
    landmarks = table[list(LANDMARK_COLUMNS)].to_numpy(np.float32)
    matrices = table[list(MATRIX_COLUMNS)].to_numpy(np.float32)
    if not (np.isfinite(landmarks).all() and np.isfinite(matrices).all()):
        raise ClassifierError("landmark or matrix columns contain NaN where blendshapes do not")
    return build_features(info, scores, landmarks, matrices)


class Classifier:
    """An ONNX emotion classifier; ``predict_proba`` maps features to [N, C] probabilities,
    C = ``len(classes)``."""

    def __init__(self, onnx_path: str | os.PathLike, info: ModelInfo, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(onnx_path)
        self.info = info
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            first = str(exc).splitlines()[0][:200]
            raise ClassifierError(f"cannot load classifier {self.path} ({first})") from None
        self._input = self._session.get_inputs()[0].name
        self._n_features = self._session.get_inputs()[0].shape[1]
        width = self._session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(info.classes):
            raise ClassifierError(
                f"classifier {self.path} outputs {width} probabilities but its sidecar names "
                f"{len(info.classes)} classes; re-export the model"
            )
        names = [i.name for i in self._session.get_inputs()]
        if (info.crop_size is not None) != ("crop" in names):
            raise ClassifierError(
                f"classifier {self.path} has graph inputs {names} but its sidecar "
                f"{'declares' if info.crop_size else 'does not declare'} a face crop; "
                "re-export the model"
            )

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    @property
    def needs_landmarks(self) -> bool:
        return self.info.landmarks is not None

    @property
    def needs_crop(self) -> bool:
        """Whether the model also reads the aligned face crop (then give ``crops`` or, for
        :meth:`predict_face`, the image)."""
        return self.info.crop_size is not None

    def crops(self, images, landmarks: np.ndarray, *, color: str = "bgr") -> np.ndarray:  # noqa: ANN001
        """The model's aligned crops [N, S, S] uint8: ``images[i]`` (or one image for all)
        with face ``i``'s ``landmarks``. See :func:`emoblend.features.crop.aligned_crop`."""
        if not self.needs_crop:
            raise ClassifierError(f"classifier {self.name!r} reads no face crop")
        points = np.asarray(landmarks, np.float32)
        if isinstance(images, np.ndarray):
            images = [images] * len(points)
        return aligned_crops(images, points, self.info.crop_size, color=color)

    def features(
        self,
        blendshapes: np.ndarray,
        landmarks: np.ndarray | None = None,
        matrices: np.ndarray | None = None,
    ) -> np.ndarray:
        """Build the model's [N, F] input from 52-score rows (and landmarks where needed).

        ``blendshapes`` is [52] or [N, 52] in MediaPipe order; ``landmarks`` [N, 478, 3] and
        ``matrices`` [N, 4, 4] are required when the model declares landmark features.
        """
        return build_features(self.info, blendshapes, landmarks, matrices)

    def predict_proba(
        self,
        blendshapes: np.ndarray,
        landmarks: np.ndarray | None = None,
        matrices: np.ndarray | None = None,
        crops: np.ndarray | None = None,
    ) -> np.ndarray:
        """Probabilities [N, K] (in :attr:`classes` order) for one face ([52]) or a batch
        ([N, 52]); ``crops`` [N, S, S] uint8 (see :meth:`crops`) for a model that reads them."""
        return self.predict_features(self.features(blendshapes, landmarks, matrices), crops)

    def predict_features(self, features: np.ndarray, crops: np.ndarray | None = None
                         ) -> np.ndarray:
        """Probabilities [N, K] for ready-built model inputs [N, F] (see :meth:`features`)
        and, for a crop-reading model, the aligned crops [N, S, S] (uint8, or float in [0, 1])."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ClassifierError(
                f"features have shape {x.shape}; classifier {self.name!r} takes "
                f"[N, {self.n_features}]"
            )
        feed = {self._input: x}
        if self.needs_crop:
            size = self.info.crop_size
            if crops is None:
                raise ClassifierError(
                    f"classifier {self.name!r} also reads the aligned face crop; pass crops "
                    "(Classifier.crops(image, landmarks)) or use a blendshape-only model"
                )
            c = np.asarray(crops)
            if c.shape != (len(x), size, size):
                raise ClassifierError(
                    f"crops have shape {c.shape}; classifier {self.name!r} takes "
                    f"[{len(x)}, {size}, {size}]"
                )
            scale = np.float32(1 / 255) if c.dtype == np.uint8 else np.float32(1)
            feed["crop"] = (c.astype(np.float32) * scale)[:, None]
        return self._session.run(None, feed)[0]

    @property
    def n_features(self) -> int:
        """Width F of the model input [N, F]."""
        return int(self._n_features)

    def predict_face(self, face, image: np.ndarray | None = None, *, color: str = "bgr"  # noqa: ANN001
                     ) -> np.ndarray:
        """Probabilities [K] for one detected :class:`~emoblend.face.landmarker.Face`;
        a crop-reading model also needs the 8-bit ``image`` the face was found in."""
        crops = None
        if self.needs_crop:
            if image is None:
                raise ClassifierError(
                    f"classifier {self.name!r} reads the face crop; give the image too"
                )
            crops = self.crops(image, face.landmarks[None], color=color)
        return self.predict_proba(
            face.blendshapes, face.landmarks[None], face.matrix[None], crops
        )[0]


def _assets() -> Path:
    return Path(str(resources.files("emoblend.classify") / "assets"))


def available_models() -> list[str]:
    """Names of the classifiers bundled with the package."""
    return sorted(p.stem for p in _assets().glob("*.onnx"))


def load_classifier(
    name_or_path: str | os.PathLike | None = None, *, threads: int = 1
) -> Classifier:
    """Load a bundled classifier by name (default: the shipped default) or an .onnx path."""
    target = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    path = Path(target)
    if path.suffix == ".onnx" or path.exists():
        onnx_path = path
    else:
        onnx_path = _assets() / f"{target}.onnx"
        if not onnx_path.is_file():
            bundled = ", ".join(available_models()) or "none"
            raise ClassifierError(
                f"no classifier named {target!r}; bundled: {bundled}; or give an .onnx file path"
            )
    sidecar = onnx_path.with_suffix(".json")
    if not onnx_path.is_file() or not sidecar.is_file():
        raise ClassifierError(
            f"classifier {onnx_path} needs both the .onnx file and its .json sidecar beside it"
        )
    try:
        info = ModelInfo.from_json(json.loads(sidecar.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ClassifierError(f"classifier sidecar {sidecar} is not valid JSON ({exc})") from None
    return Classifier(onnx_path, info, threads=threads)
