"""emoblend: happy / sad / unknown emotion from MediaPipe face blendshapes, in real time."""

from .classify.classifier import load_classifier
from .errors import EmoblendError
from .face.blendshapes import BLENDSHAPE_NAMES, select_blendshapes
from .face.landmarker import Face, FaceLandmarker
from .labels import CLASSES
from .realtime.estimator import EmotionEstimator, EmotionReading, EstimatorOptions
from .realtime.stabilizer import StabilizerOptions

__version__ = "0.1.0"

__all__ = [
    "BLENDSHAPE_NAMES",
    "CLASSES",
    "EmoblendError",
    "EmotionEstimator",
    "EmotionReading",
    "EstimatorOptions",
    "Face",
    "FaceLandmarker",
    "StabilizerOptions",
    "load_classifier",
    "select_blendshapes",
    "__version__",
]
