"""The build report: counts in the style of the paper's Tables 1-3, timings and throughput.

``report.json`` is for programs (and tests); ``report.md`` is the same numbers for people.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import write_text
from ..labels import CLASSES, FER_EMOTIONS
from .augment import NONE
from .fer2013 import SPLIT_ORDER, Fer2013

PAPER_TABLE3: dict[str, int] = {
    "angry": 597,
    "disgust": 72,
    "fear": 616,
    "happy": 377,
    "sad": 835,
    "surprise": 239,
    "neutral": 261,
}
"""The paper's Table 3: images MediaPipe could not read, per emotion (Training split)."""


def _by_emotion(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{split: {emotion name: count}} with every split and emotion present (zeros kept)."""
    counts = frame.groupby(["split", "emotion"]).size()
    return {
        split: {name: int(counts.get((split, code), 0)) for code, name in enumerate(FER_EMOTIONS)}
        for split in SPLIT_ORDER
    }


def _by_class(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    counts = frame.groupby(["split", "label"]).size()
    return {
        split: {name: int(counts.get((split, name), 0)) for name in CLASSES}
        for split in SPLIT_ORDER
    }


def make_report(
    data: Fer2013, rows: np.ndarray, table: pd.DataFrame, config, timings: dict
) -> dict:
    """All the build's counts as plain data."""
    everything = data.frame()
    kept = everything.iloc[data.positions(rows)]
    originals = table[table["augmentation"] == NONE]
    augmented = table[table["augmentation"] != NONE]
    missed = originals[~originals["detected"]]
    train_all = _by_emotion(everything)["train"]
    train_kept = _by_emotion(kept)["train"]
    missed_train = _by_emotion(missed)["train"]
    table3 = {}
    for name in FER_EMOTIONS:
        rate = missed_train[name] / train_kept[name] if train_kept[name] else None
        table3[name] = {
            "kept": train_kept[name],
            "undetected": missed_train[name],
            "rate": rate,
            "expected_in_full_split": round(rate * train_all[name]) if rate is not None else None,
            "paper": PAPER_TABLE3[name],
            "paper_rate": PAPER_TABLE3[name] / train_all[name] if train_all[name] else None,
        }
    kinds = augmented["augmentation"].str.replace(r"[+-]\d+(\.\d)?$", "", regex=True)
    angles = pd.to_numeric(
        augmented["augmentation"].str.extract(r"rot([+-]\d+(?:\.\d)?)$")[0], errors="coerce"
    )
    rows_total = table.groupby("split").size()
    return {
        "config": config.summary(),
        "table1_csv": {"by_emotion": _by_emotion(everything), "by_class": _by_class(everything)},
        "table2_kept": {
            "caps": dict(config.caps),
            "by_emotion": _by_emotion(kept),
            "by_class": _by_class(kept),
        },
        "table3_undetected": {
            "train_vs_paper": table3,
            "by_emotion": _by_emotion(missed),
            "by_class": _by_class(missed),
            "augmented_by_class": _by_class(augmented[~augmented["detected"]])["train"],
        },
        "augmentation": {
            "copies_per_train_image": config.augment_copies,
            "rows": len(augmented),
            "by_kind": {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()},
            "angle_min": float(angles.min()) if angles.notna().any() else None,
            "angle_max": float(angles.max()) if angles.notna().any() else None,
        },
        "table": {
            "rows": len(table),
            "rows_by_split": {s: int(rows_total.get(s, 0)) for s in SPLIT_ORDER},
            "detected_by_class": _by_class(table[table["detected"]]),
            "rows_by_class": _by_class(table),
            "columns": len(table.columns),
        },
        "timings": timings,
    }


def write_report(report: dict, out: Path) -> None:
    import json

    write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    write_text(out / "report.md", render_markdown(report))


def _grid(title: str, counts: dict[str, dict[str, int]], names) -> list[str]:
    lines = [f"| {title} | " + " | ".join(names) + " | total |", "|---" * (len(names) + 2) + "|"]
    for split, row in counts.items():
        values = [row[n] for n in names]
        lines.append(f"| {split} | " + " | ".join(map(str, values)) + f" | {sum(values)} |")
    return lines


def render_markdown(report: dict) -> str:
    cfg, t = report["config"], report["timings"]
    out = [
        "# FER2013 feature table: build report",
        "",
        f"Source `{cfg['fer2013']}`; limit {cfg['limit']}, seed {cfg['seed']}, "
        f"{cfg['augment_copies']} augmented copies per Training image, "
        f"landmarks {'yes' if cfg['landmarks'] else 'no'}.",
        "",
        "## Table 1: images in the CSV",
        "",
        *_grid("split", report["table1_csv"]["by_emotion"], FER_EMOTIONS),
        "",
        *_grid("split", report["table1_csv"]["by_class"], CLASSES),
        "",
        "## Table 2: images kept (Training capped, seeded)",
        "",
        "Caps: "
        + ", ".join(
            f"{k} {v if v is not None else 'all'}" for k, v in report["table2_kept"]["caps"].items()
        )
        + ".",
        "",
        *_grid("split", report["table2_kept"]["by_emotion"], FER_EMOTIONS),
        "",
        *_grid("split", report["table2_kept"]["by_class"], CLASSES),
        "",
        "Rows in the table (augmented copies included):",
        "",
        *_grid("split", report["table"]["rows_by_class"], CLASSES),
        "",
        "## Table 3: images with no face found",
        "",
        "Original (not augmented) images. The paper's Table 3 counts the whole Training split;",
        "this build extracts only the kept (capped) images, so the comparison is by rate, and",
        "'expected' scales this build's rate to the whole split.",
        "",
        "| emotion | kept | undetected | rate | expected in full split | paper | paper rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in report["table3_undetected"]["train_vs_paper"].items():
        rate = f"{r['rate']:.1%}" if r["rate"] is not None else "-"
        paper_rate = f"{r['paper_rate']:.1%}" if r["paper_rate"] is not None else "-"
        out.append(
            f"| {name} | {r['kept']} | {r['undetected']} | {rate} | "
            f"{r['expected_in_full_split'] if r['expected_in_full_split'] is not None else '-'} | "
            f"{r['paper']} | {paper_rate} |"
        )
    aug = report["augmentation"]
    out += [
        "",
        *_grid("split", report["table3_undetected"]["by_emotion"], FER_EMOTIONS),
        "",
        *_grid("split", report["table3_undetected"]["by_class"], CLASSES),
        "",
        "Undetected augmented training copies by class: "
        + ", ".join(
            f"{k} {v}" for k, v in report["table3_undetected"]["augmented_by_class"].items()
        )
        + ".",
        "",
        "Samples: `undetected.png` (the paper's Fig. 3).",
        "",
        "## Augmentation",
        "",
        f"{aug['rows']} augmented Training rows: "
        + (", ".join(f"{k} {v}" for k, v in aug["by_kind"].items()) or "none")
        + (
            f"; rotation angles {aug['angle_min']:+.1f}° to {aug['angle_max']:+.1f}°."
            if aug["angle_min"] is not None
            else "."
        ),
        "",
        "## Timings",
        "",
        f"- reading and validating the CSV: {t['load_s']:.1f} s",
        f"- extraction: {t['images_extracted']} images in {t['extract_s']:.1f} s with "
        f"{t['workers']} worker(s)"
        + (f" = {t['images_per_s']:.1f} images/s" if t["images_per_s"] else "")
        + (
            f" ({t['chunks_reused']} of {t['chunks']} chunks reused from an interrupted run)"
            if t["chunks_reused"]
            else ""
        ),
        f"- whole build: {t['total_s']:.1f} s",
        "",
    ]
    return "\n".join(out)
