"""What a batch run reads: INPUT arguments expanded into videos and photos, then cut into units.

A *unit* is one task for a worker and one Parquet part on disk: a whole video (VIDEO mode needs
its frames in order in one estimator), or a fixed batch of photos (one part per photo would make
a million-photo set a million files). Units and their part names depend only on the inputs, so
a rerun over the same inputs finds the parts an earlier run finished.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import BatchError
from ..io.images import IMAGE_SUFFIXES, expand_image_paths
from ..io.video import VIDEO_SUFFIXES

PHOTOS_PER_UNIT = 128
"""Photos per task and part: about a second of MediaPipe, a few hundred KB of Parquet."""


@dataclass(frozen=True)
class Unit:
    """One task: a video, or a batch of photos, and the part file it is written to."""

    kind: str
    """"video" or "photos"."""
    paths: tuple[str, ...]
    part: str
    """The part's file name inside the dataset folder."""
    size: int = 0
    """Bytes on disk (videos), to start the longest work first."""


def expand_inputs(args: list[str]) -> tuple[list[Path], list[Path]]:
    """Videos and photos named by ``args``: files, folders (searched recursively) and
    ``@list.txt`` files (one path per line, relative to the list's folder; # comments).

    A file or folder named on the command line must exist (a typo stops the run before any
    work). A path read from a list or found in a folder is kept as it is: if it cannot be read,
    that input is recorded as failed and the others go on. Duplicates are dropped.
    """
    videos: dict[str, Path] = {}
    photos: dict[str, Path] = {}
    for arg in args:
        if arg.startswith("@"):
            entries = _read_list(Path(arg[1:]))
            named = False
        else:
            entries, named = [Path(arg)], True
        for path in entries:
            if named and not path.exists():
                raise BatchError(f"input not found: {path}; give video or photo files, folders "
                                 "or @list.txt")
            if path.is_dir():
                found = expand_image_paths([path]) + sorted(
                    f for f in path.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES
                )
                if named and not found:
                    raise BatchError(f"folder {path} holds no video ({', '.join(VIDEO_SUFFIXES)})"
                                     " or photo file")
            else:
                found = [path]
            for f in found:
                _classify(f, videos, photos, strict=named)
    if not videos and not photos:
        raise BatchError("no video or photo to read; give files, folders or @list.txt")
    return list(videos.values()), list(photos.values())


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"cannot read the list @{path} ({exc.__class__.__name__}); give a "
                         "text file with one path per line") from None
    entries = [line.strip() for line in lines]
    return [path.parent / e for e in entries if e and not e.startswith("#")]


def _classify(path: Path, videos: dict, photos: dict, *, strict: bool) -> None:
    suffix = path.suffix.lower()
    key = os.path.abspath(path)
    if suffix in VIDEO_SUFFIXES:
        videos.setdefault(key, Path(key))
    elif suffix in IMAGE_SUFFIXES:
        photos.setdefault(key, Path(key))
    elif strict:
        raise BatchError(
            f"{path} is neither a video ({', '.join(VIDEO_SUFFIXES)}) nor a photo "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}) by its name"
        )
    else:  # from a list: recorded as a failed input by the worker
        videos.setdefault(key, Path(key))


def plan_units(videos: list[Path], photos: list[Path],
               photos_per_unit: int = PHOTOS_PER_UNIT) -> list[Unit]:
    """The run's units, longest videos first (so the last task to finish is a short one)."""
    units = [Unit("video", (str(v),), f"{_stem(v)}-{_digest([str(v)])}.parquet", _size(v))
             for v in videos]
    units.sort(key=lambda u: -u.size)
    for start in range(0, len(photos), photos_per_unit):
        paths = [str(p) for p in photos[start:start + photos_per_unit]]
        units.append(Unit("photos", tuple(paths), f"photos-{_digest(paths)}.parquet"))
    return units


def _stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:60] or "video"


def _digest(paths: list[str]) -> str:
    return hashlib.sha1("\n".join(paths).encode("utf-8")).hexdigest()[:12]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
