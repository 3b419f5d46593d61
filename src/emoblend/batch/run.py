"""The driver of a batch run: plan the units, skip finished parts, run the rest on an engine,
and write summary.csv.

The driver holds no model and no rows: workers write the parts, the driver only sees each
unit's small input records. Killing it at any moment loses at most the units in flight; a
rerun with the same inputs and settings resumes to the same dataset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..data.build import default_workers
from ..errors import BatchError
from ..progress import progress_bar
from .inputs import Unit, expand_inputs, plan_units
from .local import WorkerLost, run_local
from .parts import (
    SUMMARY_NAME,
    InputRecord,
    finished_parts,
    prepare_out,
    remove_leftovers,
    write_summary,
)
from .work import BatchSettings, UnitWorker

ENGINES = ("local", "ray")


@dataclass
class BatchResult:
    records: list[InputRecord]
    """One per input, in the run's order (as in summary.csv)."""
    parts_dir: Path
    summary_path: Path
    units: int = 0
    units_skipped: int = 0
    """Units an earlier run had finished."""
    stale_parts: list[str] = field(default_factory=list)
    """Parts of inputs no longer given, removed so the dataset matches the inputs."""
    seconds: float = 0.0
    """Wall time of the units run here (engine start-up included)."""

    @property
    def failed(self) -> list[InputRecord]:
        return [r for r in self.records if r.status != "ok"]

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.records)


def run_batch(
    inputs: list[str],
    out: Path,
    settings: BatchSettings | None = None,
    *,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> BatchResult:
    """Read every video and photo named by ``inputs`` into the dataset under ``out``."""
    settings = settings or BatchSettings()
    if engine not in ENGINES:
        raise BatchError(f"--engine {engine!r}: use local or ray")
    if workers is not None and workers < 1:
        raise BatchError(f"--workers is {workers}; give 1 or more")
    if settings.every < 1:
        raise BatchError(f"--every is {settings.every}; give 1 (every frame) or more")
    if engine == "ray":
        from .ray import import_ray

        import_ray()  # a missing Ray is said before any work
    say = on_stage or (lambda _msg: None)
    videos, photos = expand_inputs(inputs)
    units = plan_units(videos, photos)
    parts = prepare_out(out, settings.as_dict())
    done = finished_parts(parts)
    wanted = {u.part for u in units}
    stale = sorted(name for name in done if name not in wanted)
    for name in stale:
        (parts / name).unlink(missing_ok=True)
    todo = [u for u in units if u.part not in done]
    if engine == "local" or not ray_address:
        workers = workers or default_workers()
    say(f"{len(videos)} videos and {len(photos)} photos in {len(units)} tasks"
        + (f" ({len(units) - len(todo)} done by an earlier run)" if len(todo) < len(units)
           else "")
        + (f"; removed {len(stale)} parts of inputs no longer given" if stale else "")
        + f"; {engine} engine, "
        + (f"{workers} worker(s)" if workers else "one worker per CPU of the cluster"))

    results: dict[str, list[InputRecord]] = {u.part: done[u.part] for u in units
                                             if u.part in done}
    start = time.perf_counter()
    if todo:
        worker_args = (settings, str(parts))
        if engine == "ray":
            from .ray import run_ray

            stream = run_ray(UnitWorker, worker_args, todo, workers=workers, address=ray_address)
        else:
            stream = run_local(UnitWorker, worker_args, todo, workers=min(workers, len(todo)))
        _collect(stream, todo, results, sum(len(u.paths) for u in units), progress)
    remove_leftovers(parts)  # of a worker killed during this run
    records = [r for u in units for r in results[u.part]]
    summary_path = out / SUMMARY_NAME
    write_summary(summary_path, records)
    return BatchResult(records, parts, summary_path, len(units), len(units) - len(todo), stale,
                       time.perf_counter() - start)


def _collect(stream, todo: list[Unit], results: dict, total: int, progress: bool) -> None:  # noqa: ANN001
    """Gather the units' records as they finish, with a bar of inputs done and frames/s."""
    bar = progress_bar(enabled=progress)
    frames, start = 0, time.perf_counter()
    with bar:
        task = bar.add_task("reading", total=total,
                            completed=sum(len(r) for r in results.values()))
        for i, outcome in stream:
            unit = todo[i]
            if isinstance(outcome, WorkerLost):
                outcome = [InputRecord(p, "video" if unit.kind == "video" else "photo",
                                       status="failed", reason=f"not read: {outcome}")
                           for p in unit.paths]
            results[unit.part] = outcome
            frames += sum(r.frames for r in outcome)
            rate = frames / max(time.perf_counter() - start, 1e-9)
            bar.update(task, advance=len(unit.paths), description=f"reading, {rate:.0f} frames/s")
