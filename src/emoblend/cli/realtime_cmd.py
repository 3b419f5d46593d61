"""``emoblend live | video | images | demo``: emotion readings from cameras, clips and photos."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..errors import EmoblendError
from ..progress import progress_bar
from .common import (
    IMAGE_NUM_FACES,
    FaceModelOption,
    MaxPixelsOption,
    check_batch,
    finish_batch,
    image_batch,
)

ModelOption = typer.Option(
    None, "--model", help="Classifier: a bundled name or an .onnx path (default: the shipped one)."
)
NumFacesOption = typer.Option(1, "--num-faces", min=1, help="Most faces to read per frame.")
BagOption = typer.Option(
    None, "--bag", help="Also write a ROS 2 bag (REP-155 topics, MCAP) to this new folder "
    '(needs pip install "emoblend[ros]").', file_okay=False,
)
BagImagesOption = typer.Option(
    False, "--bag-images", help="Also record the frames in the bag (JPEG CompressedImage)."
)


def register(app: typer.Typer) -> None:
    app.command("live")(live)
    app.command("video")(video)
    app.command("images")(images)
    app.command("demo")(demo)


def _summary_lines(summary, console: Console) -> None:  # noqa: ANN001 - StreamSummary
    shares = ", ".join(f"{k} {v:.0%}" for k, v in summary.label_shares().items()) or "none"
    console.print(
        f"{summary.frames} frames ({summary.duration_ms / 1000:.1f} s), a face in "
        f"{summary.frames_with_face}; face ids {summary.face_ids or 'none'}; "
        f"stable labels: {shares}; label switches per-frame {summary.switches('label')}, "
        f"stable {summary.switches('stable_label')}; {summary.fps:.1f} fps",
        highlight=False,
        soft_wrap=True,  # one line, also when piped
    )


def video(
    input: Path = typer.Argument(..., help="Video file (MP4, MOV, AVI, MKV).", dir_okay=False),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the annotated video here (.mp4).", dir_okay=False
    ),
    timeline: Path | None = typer.Option(
        None, "--timeline", help="Write one row per face per frame (.csv or .jsonl).",
        dir_okay=False,
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw probabilities and stable labels over time (.png).",
        dir_okay=False,
    ),
    model: str | None = ModelOption,
    num_faces: int = NumFacesOption,
    face_model: Path | None = FaceModelOption,
    bag: Path | None = BagOption,
    bag_images: bool = BagImagesOption,
    server: str | None = typer.Option(
        None, "--server", help="Read the frames on an `emoblend serve` server (ws://HOST:PORT) "
        "instead of here; the outputs are the same."),
    token: str | None = typer.Option(
        None, "--token", envvar="EMOBLEND_TOKEN", help="The server's token (with --server)."),
) -> None:
    """Read the emotion of each face in a video, frame by frame, with steady labels."""
    from ..realtime.estimator import EstimatorOptions
    from ..realtime.pipeline import process_video
    from ..ros.sinks import stream_sinks

    make_estimator = None
    if server is not None:
        if model is not None or num_faces != 1 or face_model is not None:
            raise EmoblendError("with --server the server's own --model, --num-faces and "
                                "--face-model apply; drop them here (set them on emoblend serve)")
        from ..serve.client import RemoteEstimator

        def make_estimator():  # noqa: ANN202 - connects once the video has opened
            return RemoteEstimator(server, token=token)

    summary = process_video(
        input,
        EstimatorOptions(classifier=model, num_faces=num_faces, face_model=face_model),
        make_estimator=make_estimator,
        annotated=output, timeline=timeline, plot=plot, progress=True,
        sinks=stream_sinks(bag=bag, bag_images=bag_images),
    )
    out = Console()
    _summary_lines(summary, out)
    for what, path in (("annotated video", output), ("timeline", timeline), ("plot", plot),
                       ("ROS 2 bag", bag)):
        if path is not None:
            out.print(f"{what} written to {path}", highlight=False)


def live(
    camera: str = typer.Option(
        "0", "--camera",
        help="Camera index (0 is the first camera), or a stream URL such as rtsp://HOST/PATH.",
    ),
    no_window: bool = typer.Option(
        False, "--no-window", help="Show no window; print label changes instead."
    ),
    timeline: Path | None = typer.Option(
        None, "--timeline", help="Write one row per face per frame (.csv or .jsonl) on exit.",
        dir_okay=False,
    ),
    seconds: float | None = typer.Option(
        None, "--seconds", min=0.1, help="Stop after this long (default: until q, Esc or Ctrl-C)."
    ),
    model: str | None = ModelOption,
    num_faces: int = NumFacesOption,
    face_model: Path | None = FaceModelOption,
    bag: Path | None = BagOption,
    bag_images: bool = BagImagesOption,
    foxglove: str | None = typer.Option(
        None, "--foxglove", metavar="[HOST:]PORT",
        help="Serve a live Foxglove view (camera, boxes, readings) on this address; "
        "127.0.0.1 unless a host is given (8765 is Foxglove's usual port).",
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="EMOBLEND_TOKEN",
        help="Token Foxglove clients must give (ws://HOST:PORT/?token=TOKEN); needed for "
        "any --foxglove host but loopback.",
    ),
) -> None:
    """Read emotions live from a camera, with an overlay: box, label, confidence bar, fps."""
    from contextlib import ExitStack

    import cv2

    from ..io.camera import CameraSource
    from ..io.timeline import TimelineWriter, timeline_format
    from ..realtime.estimator import EmotionEstimator, EstimatorOptions
    from ..realtime.pipeline import run_stream
    from ..ros.sinks import stream_sinks

    if timeline is not None:
        timeline_format(timeline)
    sinks = stream_sinks(bag=bag, bag_images=bag_images, foxglove=foxglove, token=token,
                         live=True)
    out = Console()
    last_labels: dict[int, str] = {}

    class Stop(Exception):
        pass

    def show(image) -> None:  # noqa: ANN001
        try:
            cv2.imshow("emoblend live (q to quit)", image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            raise EmoblendError("cannot open a window here (no display); use --no-window") from None
        if key in (ord("q"), 27):
            raise Stop

    def report(frame, readings) -> None:  # noqa: ANN001
        for r in readings:
            if last_labels.get(r.face_id) != r.stable_label:
                last_labels[r.face_id] = r.stable_label
                out.print(f"{frame.timestamp_ms / 1000:7.2f} s  face #{r.face_id}: "
                          f"{r.stable_label} ({r.confidence:.2f})", highlight=False)
        if seconds is not None and frame.timestamp_ms >= seconds * 1000:
            raise Stop

    with ExitStack() as stack:
        source = stack.enter_context(CameraSource(camera))
        if not no_window:
            _check_display()
        estimator = stack.enter_context(EmotionEstimator.create_from_options(
            EstimatorOptions(classifier=model, num_faces=num_faces, face_model=face_model)))
        writer = (stack.enter_context(TimelineWriter(timeline, estimator.classes))
                  if timeline else None)
        for sink in sinks:
            stack.enter_context(sink)
            if getattr(sink, "url", None):
                out.print(f"Foxglove live view on {sink.url}", highlight=False)
        try:
            run_stream(source, estimator, annotate=None if no_window else show,
                       on_row=writer.write if writer else None, on_frame=report,
                       keep_rows=False, sinks=sinks)
        except (Stop, KeyboardInterrupt):
            # the normal ways to end a live session (q, Ctrl-C, SIGTERM): outputs are kept,
            # and a stop signal still sets the exit status (see emoblend.cli.main)
            pass
        finally:
            if not no_window:
                cv2.destroyAllWindows()
    if timeline is not None:
        out.print(f"timeline written to {timeline}", highlight=False)
    if bag is not None:
        out.print(f"ROS 2 bag written to {bag}", highlight=False)


def _check_display() -> None:
    """Refuse early where no window can open: Qt aborts the whole process instead of raising."""
    import os
    import sys

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise EmoblendError(
            "no display to show the live window (DISPLAY is not set); use --no-window, "
            "or run from a desktop session"
        )


def images(
    paths: list[Path] = typer.Argument(..., help="Image files or folders of images."),
    csv: Path | None = typer.Option(
        None, "--csv", help="Write one row per face (and per faceless or unreadable file) here.",
        dir_okay=False,
    ),
    model: str | None = ModelOption,
    num_faces: int = typer.Option(
        IMAGE_NUM_FACES, "--num-faces", min=1, help="Most faces to read per photo."
    ),
    max_pixels: int | None = MaxPixelsOption,
    face_model: Path | None = FaceModelOption,
) -> None:
    """Read the emotion of each face in photos (IMAGE mode: each photo on its own).

    A file that cannot be read gets a row with label "error" and the reason; the others are
    still read and written, and the command then exits with status 3.
    """
    import pandas as pd
    from rich.table import Table

    from ..errors import ImageError
    from ..io.atomic import atomic_path, check_output
    from ..io.images import read_image
    from ..realtime.estimator import EmotionEstimator, EstimatorOptions

    files = image_batch(paths, max_pixels)
    if csv is not None:
        check_output(csv)
    rows: list[dict] = []
    failures: list[tuple[Path, str]] = []
    options = EstimatorOptions(classifier=model, num_faces=num_faces, running_mode="image",
                               color="rgb", face_model=face_model)
    with (
        EmotionEstimator.create_from_options(options) as estimator,
        progress_bar(enabled=len(files) >= 5) as bar,
    ):
        labels = estimator.classes
        for path in bar.track(files, description="reading faces"):
            try:
                readings = estimator.process(read_image(path, max_pixels=max_pixels))
            except ImageError as exc:
                failures.append((path, str(exc)))
                rows.append({"file": str(path), "face": None, "label": "error",
                             "error": str(exc)})
                continue
            if not readings:
                rows.append({"file": str(path), "face": None, "label": "no face"})
            for r in readings:
                row = {"file": str(path), "face": r.face_id}
                row.update(zip(("x", "y", "w", "h"), r.box, strict=True))
                row.update({f"p_{c}": round(p, 6) for c, p in r.probabilities.items()})
                row["label"] = r.raw_label
                rows.append(row)
    check_batch(failures, len(files))
    columns = ["file", "face", "x", "y", "w", "h", *[f"p_{c}" for c in labels], "label", "error"]
    table = pd.DataFrame(rows, columns=columns)
    table["face"] = table["face"].astype("Int64")
    for col in ("x", "y", "w", "h"):
        table[col] = table[col].astype("Int64")
    console = Console()
    if csv is not None:
        with atomic_path(csv) as tmp:
            table.to_csv(tmp, index=False)
        console.print(f"{len(table)} rows written to {csv}", highlight=False)
        finish_batch(failures, len(files))
        return
    view = Table(title="emotion per face")
    for col in ("file", "face", "box", *labels, "label"):
        view.add_column(col, justify="left" if col in ("file", "label") else "right")
    for row in rows:
        if row["face"] is None:
            label = f"error: {row['error']}" if row["label"] == "error" else row["label"]
            view.add_row(row["file"], "", "", *[""] * len(labels), label)
            continue
        box = f"{row['x']},{row['y']},{row['w']},{row['h']}"
        view.add_row(row["file"], str(row["face"]), box,
                     *[f"{row[f'p_{c}']:.2f}" for c in labels], row["label"])
    console.print(view)
    finish_batch(failures, len(files))


def demo(
    out: Path = typer.Option(
        Path("emoblend-demo"), "--out",
        help="Folder for the clip, the annotated video, the timeline and its plot.",
        file_okay=False,
    ),
    model: str | None = ModelOption,
    face_model: Path | None = FaceModelOption,
) -> None:
    """Run the whole pipeline on a clip made from a real face photo (no camera needed).

    The clip is rendered from scikit-image's bundled portrait of astronaut Eileen Collins
    (public domain, NASA), moved like a handheld camera would see it, with sensor noise.
    """
    from ..realtime.demo import DEMO_FPS, DEMO_SECONDS, run_demo

    console = Console()
    with progress_bar() as bar:
        task = bar.add_task("demo clip", total=round(DEMO_FPS * DEMO_SECONDS))
        result = run_demo(out, model=model, face_model=face_model,
                          on_frame=lambda frame, readings: bar.advance(task))
    _summary_lines(result.summary, console)
    console.print(f"input clip: {result.clip}\nannotated video: {result.annotated}\n"
                  f"timeline: {result.timeline}\nplot: {result.plot}", highlight=False)
