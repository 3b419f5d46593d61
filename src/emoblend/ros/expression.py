"""A classifier's labels in REP-155's words: each label -> one ``hri_msgs/Expression`` constant.

The constants are read from the ``Expression.msg`` shipped in ``ros/msgs/`` (the message's own
vocabulary: ``neutral``, ``happy``, ``sad``, ``angry``, ``scared``, ...), so nothing here depends
on ``rosbags``. A label that is already one of them maps to itself. FER2013's names differ from
the message's for three emotions (fear -> scared, disgust -> disgusted, surprise -> surprised).

``unknown`` maps to ``Expression.NEUTRAL``. The message has no "unknown" constant, and the
three-class models' "unknown" means "neither happy nor sad": a face at rest, or an expression
the model does not name (its stabilizer also says "unknown" while it warms up on a new face).
Of the message's constants only NEUTRAL claims no emotion, which is what a robot listening on
``/expression`` should act on in that case; an empty or invented string would fall through
the switch of a node written against the constants. How sure the reading is travels in
``confidence``. A seven-class model names its emotions, and they map one to one.

A label with no constant (say, "contempt" from some future model) is refused with
:class:`ExpressionError` when the mapping is built (a bag writer builds it from its first
reading's label set, and the failed run leaves no bag), rather than published as a string no
ROS node expects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from ..errors import EmoblendError

MSG_DIR = Path(__file__).parent / "msgs"
"""The .msg files shipped with the package, one folder per ROS package (``msgs/hri_msgs/``)."""

SYNONYMS: dict[str, str] = {
    "unknown": "neutral",  # see the module docstring for why
    "fear": "scared",
    "disgust": "disgusted",
    "surprise": "surprised",
}
"""Classifier label -> Expression constant value, for labels that are not constants already."""

_CONSTANT = re.compile(r'^\s*string\s+([A-Z][A-Z0-9_]*)\s*=\s*"([^"]*)"', re.MULTILINE)


class ExpressionError(EmoblendError):
    """A classifier label has no ``hri_msgs/Expression`` constant to stand for it."""


@cache
def expression_constants() -> dict[str, str]:
    """The message's string constants, name -> value (``{"NEUTRAL": "neutral", ...}``)."""
    text = (MSG_DIR / "hri_msgs" / "Expression.msg").read_text(encoding="utf-8")
    return dict(_CONSTANT.findall(text))


def expression_for(label: str) -> str:
    """The ``Expression`` constant value that stands for one classifier label."""
    values = set(expression_constants().values())
    key = label.strip().lower()
    value = SYNONYMS.get(key, key)
    if value not in values:
        raise ExpressionError(
            f"the classifier label {label!r} has no hri_msgs/Expression constant; "
            f"the message knows {', '.join(sorted(values))}: add it to "
            "emoblend.ros.expression.SYNONYMS"
        )
    return value


def expression_map(labels: Iterable[str]) -> dict[str, str]:
    """Label -> constant value for a whole label set (a classifier's ``info.classes``)."""
    return {label: expression_for(label) for label in labels}
