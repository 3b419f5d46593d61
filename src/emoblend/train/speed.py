"""Per-face latency of a classifier, measured the way the robot runs it: batch 1, one thread.

Used by the ablation report and benchmarks/classifier.py; figures are medians of repeated
timed blocks, so one scheduling hiccup on a shared CPU does not move them.
"""

from __future__ import annotations

import os
import time

import numpy as np


def median_ms(call, inputs: list, blocks: int = 15, per_block: int = 200) -> float:
    """Median over ``blocks`` of the mean ms per call of ``call(x)`` across ``per_block`` calls."""
    for x in inputs[:50]:
        call(x)  # warm up
    times = []
    for b in range(blocks):
        start = time.perf_counter()
        for i in range(per_block):
            call(inputs[(b * per_block + i) % len(inputs)])
        times.append((time.perf_counter() - start) * 1000 / per_block)
    return float(np.median(times))


def onnx_ms_per_face(onnx_path: str | os.PathLike, n_features: int, **kw) -> float:
    """onnxruntime, one thread, batch 1, on [1, F] float32 inputs (and a [1, 1, S, S] crop
    for a graph that also reads the face crop)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    first, *more = session.get_inputs()
    rng = np.random.default_rng(0)
    feeds = []
    for _ in range(64):
        feed = {first.name: rng.random((1, n_features), dtype=np.float32)}
        for extra in more:  # the crop: [N, 1, S, S]
            feed[extra.name] = rng.random((1, *extra.shape[1:]), dtype=np.float32)
        feeds.append(feed)
    return median_ms(lambda feed: session.run(None, feed), feeds, **kw)


def torch_ms_per_face(model, n_features: int, **kw) -> float:  # noqa: ANN001 - a torch module
    """PyTorch eager, one thread, batch 1, no autograd."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        inputs = [
            torch.from_numpy(rng.random((1, n_features), dtype=np.float32)) for _ in range(64)
        ]
        model.eval()
        with torch.inference_mode():
            return median_ms(model, inputs, **kw)
    finally:
        torch.set_num_threads(threads)
