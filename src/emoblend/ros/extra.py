"""The ``[ros]`` extra: its packages are imported only when a bag or a live view is asked for.

Without them, the user gets one line that names the install command, not a traceback.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import EmoblendError, require_extra


class BagError(EmoblendError):
    """A bag cannot be written where it was asked for."""


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` of the [ros] extra, or say in one line how to install it."""
    return require_extra(module, "ros", what)
