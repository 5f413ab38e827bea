"""The exported network on ONNX Runtime's CPU provider (float32: identical to torch to 1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from sanchari_processes.inference.backends import RunnerSpec
from sanchari_processes.inference.tta import sigmoid


class OnnxRuntimeRunner:
    """An ONNX Runtime session over the cached export (state: the session)."""

    name = "onnxruntime"
    device = "cpu"
    batch_views = False
    arithmetic = "f32"

    def __init__(self, path: Path, spec: RunnerSpec) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if spec.threads:
            options.intra_op_num_threads = spec.threads
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, np.float32)
        logits = self._session.run(None, {self._input: x})[0]
        return sigmoid(logits[:, 0])
