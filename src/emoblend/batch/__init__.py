"""Emotion and blendshape extraction over whole collections of videos and photos.

``emoblend batch`` (and :func:`run_batch`) reads every input with the same estimator as
``emoblend video`` / ``images``, on a local process pool or on Ray, into a resumable Parquet
dataset (one part per video or photo batch) and a summary.csv. Modules: inputs (what to read),
parts (the dataset on disk), work (the per-worker code), local and ray (the engines), run
(the driver).
"""

from .run import BatchResult, run_batch
from .work import BatchSettings

__all__ = ["BatchResult", "BatchSettings", "run_batch"]
