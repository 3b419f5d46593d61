"""The ``[ros]`` extra: its packages are imported only when a bag or a live view is asked for.

Without them, the user gets one line that names the install command, not a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import EmoblendError

INSTALL = 'pip install "emoblend[ros]"'
DISTRIBUTIONS = {"rosbags": "rosbags", "foxglove": "foxglove-sdk"}
"""Import name -> the name pip installs it by."""


class RosExtraMissing(EmoblendError):
    """rosbags or foxglove-sdk is not installed."""


class BagError(EmoblendError):
    """A bag cannot be written where it was asked for."""


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` of the [ros] extra, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        package = DISTRIBUTIONS.get(top, top)
        raise RosExtraMissing(
            f"{what} needs the ROS extra ({package} is not installed): {INSTALL}"
        ) from None
