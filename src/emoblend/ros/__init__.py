"""Readings in the robot's language: REP-155 topics in ROS 2 bags, and a live Foxglove view.

- ``bag.BagWriter``: a rosbag2 (MCAP) directory with ``/humans/faces/...`` topics, written with
  ``rosbags``, no ROS installation needed; a library class and ``emoblend video|live --bag``.
- ``foxglove_live.FoxgloveLive``: Foxglove's live WebSocket view of a running session
  (``emoblend live --foxglove``), served by ``foxglove-sdk``.
- ``expression``: a classifier's labels -> ``hri_msgs/Expression`` constants.

Both need ``pip install "emoblend[ros]"``; importing this package does not.
"""

from .bag import BagWriter
from .expression import ExpressionError, expression_for, expression_map

__all__ = ["BagWriter", "ExpressionError", "expression_for", "expression_map"]
