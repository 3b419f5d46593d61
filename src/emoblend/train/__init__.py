"""Research tools (``pip install emoblend[train]``): models, training, tuning, export.

models.py    the paper's selu-LSTM and the ablation variants (one file, config at the top);
             load_run reads a trained run back
losses.py    cross-entropy, focal, MSE, with optional class weights
data.py      feature-table splits -> arrays, the paper's blendshape selection
loop.py      the training loop: AdamW + amsgrad, clipping, checkpoints, early stopping,
             resume, calibration of the per-class bias on validation
export.py    ONNX export with the JSON sidecar, and the round-trip check
tune.py      Optuna search;  ablation.py  the ablation table;  figures.py  training plots
speed.py     per-face latency (batch 1, one thread) for the ablation and the benchmark
"""
