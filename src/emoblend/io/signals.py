"""Stop signals: SIGTERM handled like Ctrl-C, and native calls that a signal must not cut short.

A service manager stops a robot's process with SIGTERM, a person at a terminal with Ctrl-C
(SIGINT). Python turns only SIGINT into an exception; SIGTERM kills the process on the spot,
leaving temporary files behind and losing what a ``finally`` would have saved.
:func:`stop_on_signals` makes both unwind the main thread the same way (a :class:`Stopped`,
which is a ``KeyboardInterrupt``), so every ``with``/``finally`` that cleans up after Ctrl-C
also cleans up after SIGTERM. The CLI's entry point runs every command inside it; a server or
a batch driver does the same.

:func:`signals_deferred` is the other half. mediapipe 1.2 runs each call into its C library on
a worker thread and waits for it in a way a signal interrupts: the exception then unwinds
while MediaPipe is still writing its result into memory Python frees, and the process may
crash later (1 Ctrl-C stop of `emoblend live` in 20 did, on its way out). Inside the block a
stop signal waits: under :func:`stop_on_signals` it is raised when the block ends; under any
other handler (Python's own for Ctrl-C, in a script using the library) the signal is at least
kept from cutting a native call's wait short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_CAN_MASK = hasattr(signal, "pthread_sigmask")  # not on Windows


class _Deferral:
    """The main thread's open :func:`signals_deferred` blocks, and a stop that waits on them."""

    depth = 0
    pending: int | None = None


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when SIGINT or SIGTERM asks the process to stop.

    A ``KeyboardInterrupt``, so code that already handles Ctrl-C handles SIGTERM alike.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class StopRequest:
    """What :func:`stop_on_signals` saw: the first stop signal, if one arrived."""

    signum: int | None = None

    @property
    def exit_status(self) -> int | None:
        """128 + the signal number (130 for Ctrl-C, 143 for SIGTERM), as shells report it."""
        return None if self.signum is None else 128 + self.signum

    @property
    def description(self) -> str:
        if self.signum is None:
            return "not stopped"
        if self.signum == signal.SIGINT:
            return "stopped by Ctrl-C (SIGINT)"
        return f"stopped by {signal.Signals(self.signum).name}"


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM raise :class:`Stopped` in the main thread.

    As with Python's own Ctrl-C, each signal raises (a second one still stops a process
    whose clean-up hangs); the yielded :class:`StopRequest` keeps the first, whose exit
    status the process should end with. A ``Stopped`` that reaches the end of the block stops
    here. Outside the main thread, where Python cannot install handlers, the block runs
    unchanged.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request.signum is None:
            request.signum = signum
        if _Deferral.depth:
            _Deferral.pending = signum  # raised when the native call's block ends
            return
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield request
    except Stopped:
        if request.signum is None:  # raised by hand, not by a signal: keep it
            raise
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _Deferral.pending = None


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Let the block (a native call, and the Python around it) run to its end before a stop.

    A stop signal that arrives meanwhile is not lost: :func:`stop_on_signals` raises its
    :class:`Stopped` as the block ends. The signals are also blocked in this thread at the
    OS level, so that under another handler they cannot interrupt a wait inside the block;
    threads and processes started inside the block inherit that mask and keep it, which is
    how a worker pool is made to leave stopping to its parent (``data/build.py``).
    """
    main = threading.current_thread() is threading.main_thread()
    if main:
        _Deferral.depth += 1
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if _CAN_MASK else None
    try:
        yield
    finally:
        if main:
            _Deferral.depth -= 1
        if blocked is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if main and not _Deferral.depth and _Deferral.pending is not None:
            signum, _Deferral.pending = _Deferral.pending, None
            raise Stopped(signum)
