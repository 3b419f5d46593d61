"""Exceptions for mistakes a user can fix, and the one way to say an optional extra is missing.

Every error raised for bad input derives from :class:`EmoblendError`, and its message is one
line that says what was wrong and how to fix it. The CLI prints that line and exits with
status 2; anything else is a bug and keeps its traceback.
"""


from __future__ import annotations

import importlib
from types import ModuleType


class EmoblendError(Exception):
    """A user's mistake or a missing resource, with a message that says how to fix it."""


class FaceModelError(EmoblendError):
    """The MediaPipe face-model file is missing, corrupt, or could not be downloaded."""


class ImageError(EmoblendError):
    """An image could not be read or has a layout we cannot convert."""


class DatasetError(EmoblendError):
    """A FER2013 CSV or a feature table does not have the expected layout."""


class VideoError(EmoblendError):
    """A video or camera could not be opened or read."""


class ClassifierError(EmoblendError):
    """A classifier file is missing or does not match the features it is given."""


class OutputError(EmoblendError):
    """An output file or folder cannot be written: full disk, read-only folder, not a folder."""


class BatchError(EmoblendError):
    """A batch run's inputs or output folder cannot be used as given."""


class MissingExtra(EmoblendError):
    """An optional part of emoblend is used without its extra's packages installed."""


DISTRIBUTIONS = {"foxglove": "foxglove-sdk", "multipart": "python-multipart"}
"""Import name -> the name pip installs it by, where the two differ."""


def require_extra(module: str, extra: str, what: str, otherwise: str = "") -> ModuleType:
    """Import ``module`` of the ``[extra]`` extra, or raise one line saying how to get it.

    WHY: the inference install stays light (no PyTorch, Ray, ROS or web server on the
    robot); a command that needs more says so with the exact pip command, not a traceback.
    ``otherwise`` names an alternative that needs no extra (e.g. "or use --engine local").
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = (exc.name or module).split(".")[0]
        package = DISTRIBUTIONS.get(top, top)
        tail = f" ({otherwise})" if otherwise else ""
        raise MissingExtra(
            f'{what} needs the [{extra}] extra ({package} is not installed): '
            f'pip install "emoblend[{extra}]"{tail}'
        ) from None
