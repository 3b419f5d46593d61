"""Write output files atomically: to a temporary name beside the target, then rename.

A crash, a Ctrl-C or a user error half-way through never leaves a half-written output file.
Every failure to write (a full disk, a read-only or immutable folder, a path under a regular
file) becomes one :class:`~emoblend.errors.OutputError` naming the output and the cause, here,
at the one place outputs are written, so no command needs its own handling.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import EmoblendError, OutputError

LOW_SPACE_BYTES = 64 * 1024
"""Free space below this on an output's file system reads as "no space left on device"
(after a failed write the kernel has handed out every block it could)."""

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
"""Errnos only a write raises: they are the output's fault even when no file name comes along."""


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Bytes an unprivileged writer may still use under ``folder`` (None if unknown)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def disk_full(folder: str | os.PathLike) -> bool:
    free = free_bytes(folder)
    return free is not None and free < LOW_SPACE_BYTES


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def describe_os_error(exc: OSError, path: Path) -> str:
    """The cause of a failed write in a few words a user can act on."""
    code = exc.errno
    folder = path.parent
    if code == errno.ENOSPC:
        return "no space left on device (free some space or write elsewhere)"
    if code == errno.EDQUOT:
        return "disk quota exceeded (free some space or write elsewhere)"
    if code == errno.EROFS:
        return "read-only file system (write elsewhere)"
    if code in (errno.EACCES, errno.EPERM):
        return (f"permission denied: the folder {folder} is read-only or immutable "
                "(check its permissions and `lsattr -d`, or write elsewhere)")
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _nearest_existing(folder)
        return f"{blocker} is a file, not a folder (give a path in a folder)"
    if code == errno.EISDIR:
        return f"{path} is a folder (give a file name)"
    if code == errno.EFBIG:
        return "file too large for this file system (write elsewhere)"
    if code == errno.ENAMETOOLONG:
        return "the name is too long (use a shorter one)"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def output_error(dest: str | os.PathLike, exc: OSError) -> OutputError:
    """An :class:`OutputError` "cannot write DEST: CAUSE" for an OSError met writing ``dest``."""
    dest = Path(dest)
    return OutputError(f"cannot write {dest}: {describe_os_error(exc, dest)}")


def no_space_error(dest: str | os.PathLike) -> OutputError:
    return output_error(dest, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


def _is_output_fault(exc: BaseException, paths: tuple[Path, ...], folder: Path) -> bool:
    """Whether an exception raised while writing is the output's fault, not the input's."""
    if isinstance(exc, EmoblendError) or not isinstance(exc, Exception):
        return False  # already one line, or Ctrl-C / SystemExit: keep them as they are
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.filename is not None:
            return Path(exc.filename) in paths
        if exc.errno in WRITE_ERRNOS:
            return True
    # writers that wrap the OS error (torch.save's RuntimeError, FFmpeg): a full disk is the cause
    return disk_full(folder)


def check_output(dest: str | os.PathLike, *, folder: bool = False) -> None:
    """Fail now, with the one-line :class:`OutputError`, if ``dest`` cannot be written.

    ``folder=True`` checks an output folder (files will be written inside it). Nothing is
    created: the nearest existing folder is probed with a temporary file that is removed at
    once, which catches read-only and immutable folders (root ignores permission bits, not
    ``chattr +i``), paths under a regular file and a disk already full. Cheap; run it before
    long work so a bad ``--out`` fails in a second, not after an hour.
    """
    dest = Path(dest)
    if folder and dest.exists() and not dest.is_dir():
        raise OutputError(f"cannot write into {dest}: it is a file, not a folder "
                          "(give a folder path)")
    if not folder and dest.is_dir():
        raise output_error(dest, IsADirectoryError(errno.EISDIR, "Is a directory"))
    target = dest / "probe" if folder else dest
    existing = _nearest_existing(target.parent)
    if not existing.is_dir():
        raise output_error(target, NotADirectoryError(errno.ENOTDIR, "Not a directory"))
    try:
        fd, probe = tempfile.mkstemp(prefix=".emoblend-probe.", dir=existing)
    except OSError as exc:
        raise output_error(dest, exc) from None
    os.close(fd)
    os.unlink(probe)
    if disk_full(existing):
        raise no_space_error(dest)


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``dest``.

    The temporary name keeps ``dest``'s suffix so that writers choosing a format by
    extension (matplotlib, OpenCV, pandas) still do the right thing. On any failure the
    temporary file, and any folder made for it, are removed; a failure of the output itself
    (full disk, read-only folder, ...) is raised as one :class:`OutputError`.
    """
    dest = Path(dest)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        missing = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
    except OSError as exc:
        _remove(tmp, created)
        raise output_error(dest, exc) from None
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException as exc:
        output_fault = _is_output_fault(exc, (tmp, dest, dest.parent), dest.parent)
        _remove(tmp, created)
        if output_fault:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise output_error(dest, exc) from exc
            raise no_space_error(dest) from exc
        raise


def _remove(tmp: Path | None, created: list[Path]) -> None:
    """Remove a temporary file and the folders made for it (only while they are empty)."""
    if tmp is not None:
        tmp.unlink(missing_ok=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break


def write_text(dest: str | os.PathLike, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a path for a new directory to fill; on success it is renamed to ``dest``.

    The yielded path keeps ``dest``'s own name, inside a hidden temporary folder beside it
    (writers such as rosbags name the files inside after their folder). The caller creates it.
    On an error, or a crash, nothing appears under ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        work = holder / dest.name
        yield work
        os.rename(work, dest)
    finally:
        shutil.rmtree(holder, ignore_errors=True)
