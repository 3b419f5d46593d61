"""The Ray engine: the same worker classes as the local pool, as Ray actors.

Each actor builds its worker (and so its MediaPipe landmarker) in its own ``__init__`` inside
the actor process, is called once per item, and closes the worker when the run ends. Actors
restart when their process dies, and Ray retries the item that was running
(``max_restarts`` / ``max_task_retries``): a killed worker loses and duplicates nothing, since
every item's output is written under a temporary name and renamed. Items go out one per idle
actor, so a slow video never holds up the queue behind it.

``address=None`` starts a local Ray with ``workers`` CPUs (and stops it at the end);
``"auto"`` or ``"ray://HOST:PORT"`` joins a running cluster. A session the caller already
started (``ray.init`` in a notebook or a test) is used as it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import BatchError, EmoblendError, require_extra
from .local import WorkerLost

TASK_RETRIES = 2
"""Times Ray reruns an item whose actor died (a third death marks it WorkerLost)."""
LOCAL_OBJECT_STORE = 256 * 1024 * 1024
"""Object store of a Ray started here: items and results are small, the machine is shared."""


def import_ray():  # noqa: ANN201
    """The ``ray`` module, or a one-line error that says how to install it."""
    return require_extra("ray", "ray", "--engine ray", "or use --engine local")


class _Actor:
    """Holds one worker for the actor's life (see module docstring)."""

    def __init__(self, factory: Callable, args: tuple) -> None:
        self.worker = factory(*args)

    def run(self, item):  # noqa: ANN001, ANN201
        return self.worker(item)

    def close(self) -> None:
        if hasattr(self.worker, "close"):
            self.worker.close()


def start_ray(address: str | None, workers: int) -> tuple[bool, float]:
    """Join or start Ray; returns (whether this call started it, seconds it took)."""
    ray = import_ray()
    if ray.is_initialized():
        return False, 0.0
    t0 = time.perf_counter()
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False, object_store_memory=LOCAL_OBJECT_STORE)
    except ConnectionError as exc:
        raise BatchError(f"cannot join the Ray cluster at {address} ({exc}); start one with "
                         "`ray start --head` or check --ray-address") from None
    return True, time.perf_counter() - t0


def run_ray(
    factory: Callable,
    args: tuple,
    items: Sequence,
    *,
    workers: int | None,
    address: str | None = None,
) -> Iterator[tuple[int, object]]:
    """Yield ``(index, factory(*args)(items[index]))`` as items finish, in any order, from
    ``workers`` actors (one CPU each; None: one per CPU of the cluster)."""
    ray = import_ray()
    from ray.exceptions import RayActorError, RayTaskError

    from ..data.build import default_workers

    started, _ = start_ray(address, workers or default_workers())
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    actor_class = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=TASK_RETRIES)(_Actor)
    actors = [actor_class.remote(factory, args) for _ in range(min(workers, len(items)))]
    todo = list(range(len(items)))[::-1]
    running = {}
    try:
        for actor in actors:
            if todo:
                i = todo.pop()
                running[actor.run.remote(items[i])] = (actor, i)
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, i = running.pop(ref)
            try:
                result = ray.get(ref)
            except RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, EmoblendError):  # e.g. a bad --model: one line, as locally
                    raise cause from None
                raise
            except RayActorError:
                result = WorkerLost(f"its Ray worker died {TASK_RETRIES + 1} times")
            yield i, result
            if todo:
                i = todo.pop()
                running[actor.run.remote(items[i])] = (actor, i)
    finally:
        try:
            ray.get([a.close.remote() for a in actors], timeout=60)
        except Exception:  # noqa: BLE001 - a dead actor has nothing left to close
            pass
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def ray_extract(
    pixels: list[np.ndarray],
    augmentations: list[list[str]],
    model_path: Path,
    *,
    landmarks: bool,
    workers: int | None,
    address: str | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The FER2013 build's extraction on Ray, with the local pool's signature
    (:func:`emoblend.data.build.extract_parallel`) and the same worker, so the tables match."""
    from ..data.build import ChunkExtractor

    items = list(zip(pixels, augmentations, strict=True))
    for k, result in run_ray(ChunkExtractor, (str(model_path), landmarks), items,
                             workers=workers, address=address):
        if isinstance(result, WorkerLost):
            raise RuntimeError(f"chunk {k} could not be extracted: {result}")
        yield (k, *result)
