"""Write output files atomically: to a temporary name beside the target, then rename.

A crash, a Ctrl-C or a user error half-way through never leaves a half-written output file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``dest``.

    The temporary name keeps ``dest``'s suffix so that writers choosing a format by
    extension (matplotlib, OpenCV, pandas) still do the right thing.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


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
