"""emoblend: happy / sad / unknown emotion from MediaPipe face blendshapes, in real time."""

from .blendshapes import BLENDSHAPE_NAMES, select_blendshapes
from .errors import EmoblendError
from .labels import CLASSES
from .landmarker import Face, FaceLandmarker

__version__ = "0.1.0"

__all__ = [
    "BLENDSHAPE_NAMES",
    "CLASSES",
    "EmoblendError",
    "Face",
    "FaceLandmarker",
    "select_blendshapes",
    "__version__",
]
