"""Model inputs -> probabilities: the ONNX classifier and the models bundled in ``assets/``.

Each model is ``NAME.onnx`` plus a ``NAME.json`` sidecar naming its inputs and its labels;
only onnxruntime is needed here (no PyTorch on the robot side).
"""
