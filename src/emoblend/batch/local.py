"""The local engine: a pool of spawned worker processes, each holding one worker object.

It maps a worker class over items the way the Ray engine does (``factory(*args)`` built once
per process, called once per item, closed when the process ends), so the driver does not care
which engine runs. Processes are spawned, not forked: a MediaPipe graph must not be shared
with a parent. A worker process that dies (killed, out of memory, a crash in native code) does
not end the run: the pool is rebuilt and the items that were in flight are given again, up to
``attempts`` times each; an item that keeps killing its worker comes back as :class:`WorkerLost`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.util import Finalize

ATTEMPTS = 3


class WorkerLost(Exception):
    """An item whose worker process died every time it was tried."""


_worker = None


def _init_worker(factory: Callable, args: tuple) -> None:
    global _worker
    _worker = factory(*args)
    if hasattr(_worker, "close"):  # run when the process ends, also on a pool shutdown
        Finalize(_worker, _worker.close, exitpriority=10)


def _call(item):  # noqa: ANN001, ANN202
    return _worker(item)


def run_local(
    factory: Callable,
    args: tuple,
    items: Sequence,
    *,
    workers: int,
    attempts: int = ATTEMPTS,
) -> Iterator[tuple[int, object]]:
    """Yield ``(index, factory(*args)(items[index]))`` as items finish, in any order.

    At most ``workers`` items are in flight, so a dead pool's unfinished futures are the items
    being worked on, and only those are charged an attempt.
    """
    todo = list(range(len(items)))[::-1]  # popped from the end: items go out in order
    tries = [0] * len(items)
    context = multiprocessing.get_context("spawn")
    while todo:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                   initargs=(factory, args))
        running: dict[Future, int] = {}
        broken = False
        try:
            while (todo or running) and not broken:
                while todo and len(running) < workers:
                    i = todo.pop()
                    tries[i] += 1
                    running[pool.submit(_call, items[i])] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    i = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        running[future] = i  # handled with the others below
                        continue
                    yield i, result
            if broken:
                for future, i in running.items():
                    if future.done() and future.exception() is None:
                        yield i, future.result()
                    elif tries[i] >= attempts:
                        yield i, WorkerLost(f"its worker process died {tries[i]} times")
                    else:
                        todo.append(i)
        except BaseException:
            # Ctrl-C or an error: stop the workers now rather than after a long video
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
