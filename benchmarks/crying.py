"""The crying check of issue 11: does a model read a crying person as happy? Prints JSON.

    python benchmarks/crying.py [--model NAME_OR_ONNX ...] [--plot docs/figures/crying-check.png]

``WolfgangLanger_Pexels.mp4`` (shared media): a woman cries for the first ~9 s (eyes squeezed
shut, mouth stretched, hand to her face), composes herself, and smiles from ~10.5 s to the
end. Each model runs through the product path, ``emoblend video``'s loop
(:func:`emoblend.realtime.pipeline.process_video`, VIDEO mode, the stabilizer's defaults), and
the share of frames per stable label is reported for the crying span (0-9 s; goal: happy
<= 5 %, sad >= 50 %) and the smiling span (10.5 s to the end; goal: happy >= 95 %), with the
majority stable label of every second.

This clip is a check, never a training or selection input: nothing here feeds a choice.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

from emoblend.classify.classifier import DEFAULT_MODEL, load_classifier
from emoblend.realtime.estimator import EstimatorOptions
from emoblend.realtime.pipeline import process_video

SHARED = Path(os.environ.get("EMOBLEND_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CRYING = (0.0, 9.0)
SMILING = (10.5, float("inf"))


def read_clip(clip: Path, model) -> list[tuple[float, str]]:  # noqa: ANN001 - name or Classifier
    """(seconds, stable label) of every frame with a face."""
    rows: list[tuple[float, str]] = []

    def keep(frame, readings) -> None:  # noqa: ANN001
        for reading in readings[:1]:
            rows.append((frame.timestamp_ms / 1000, reading.stable_label))

    process_video(clip, EstimatorOptions(classifier=model), on_frame=keep)
    return rows


def shares(rows: list[tuple[float, str]], span: tuple[float, float], labels) -> dict:  # noqa: ANN001
    picked = [label for t, label in rows if span[0] <= t < span[1]]
    counts = Counter(picked)
    return {"frames": len(picked), **{c: round(counts[c] / max(len(picked), 1), 3) for c in labels}}


def per_second(rows: list[tuple[float, str]]) -> list[str]:
    seconds: dict[int, Counter] = {}
    for t, label in rows:
        seconds.setdefault(int(t), Counter())[label] += 1
    return [seconds[s].most_common(1)[0][0] if s in seconds else "" for s in
            range(max(seconds) + 1)]


def plot(results: dict, runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"happy": "#f2b700", "sad": "#2f6db5", "unknown": "#9e9e9e", "neutral": "#9e9e9e"}
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 1.1 + 1.0 * len(runs)), sharex=True,
                             squeeze=False)
    for ax, (name, rows) in zip(axes[:, 0], runs.items(), strict=True):
        seen = set()
        for t, label in rows:
            ax.axvline(t, color=colors.get(label, "#c44e52"), lw=1.2,
                       label=None if label in seen else label)
            seen.add(label)
        for edge in (CRYING[1], SMILING[0]):
            ax.axvline(edge, color="k", ls="--", lw=0.8)
        r = results[name]
        ax.set_title(
            f"{name}: crying 0-9 s happy {r['crying'].get('happy', 0):.0%}, sad "
            f"{r['crying'].get('sad', 0):.0%} | smiling 10.5 s-end happy "
            f"{r['smiling'].get('happy', 0):.0%}", fontsize=8, loc="left")
        ax.set_yticks([])
        ax.legend(fontsize=7, ncol=4, loc="upper right", framealpha=0.9)
    axes[-1, 0].set_xlabel("seconds into WolfgangLanger_Pexels.mp4 (stable label per frame; "
                           "dashed: end of crying, start of smiling)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="bundled name or .onnx (repeatable); "
                        "default: the shipped default")
    parser.add_argument("--clip", type=Path,
                        default=SHARED / "media" / "WolfgangLanger_Pexels.mp4")
    parser.add_argument("--plot", type=Path, help="also draw the stable labels to this PNG")
    args = parser.parse_args()
    results, runs = {}, {}
    for model in args.model or [DEFAULT_MODEL]:
        classifier = load_classifier(model)
        rows = read_clip(args.clip, classifier)
        runs[classifier.name] = rows
        results[classifier.name] = {
            "crying": shares(rows, CRYING, classifier.classes),
            "smiling": shares(rows, SMILING, classifier.classes),
            "per_second": per_second(rows),
        }
    if args.plot:
        plot(results, runs, args.plot)
    print(json.dumps({"clip": str(args.clip), "goals": {"crying_happy_max": 0.05,
                      "crying_sad_min": 0.5, "smiling_happy_min": 0.95},
                      "models": results}, indent=1))


if __name__ == "__main__":
    main()
