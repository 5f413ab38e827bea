"""The exported network on OpenVINO's CPU plugin, compiled for the patch shape.

OpenVINO picks the CPU's fastest precision (bfloat16 where the CPU has it, e.g. AVX512-BF16 or
AMX; float32 elsewhere); the masks agree with torch float32 within the accuracy bar (model card,
Speed). Compiled blobs are cached beside the export, so later starts skip compilation.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import openvino as ov

from sanchari_processes.inference.backends import RunnerSpec
from sanchari_processes.inference.tta import sigmoid


class OpenVinoRunner:
    """An OpenVINO compiled model and its infer request (state: both)."""

    name = "openvino"
    device = "cpu"
    batch_views = False

    def __init__(self, path: Path, spec: RunnerSpec) -> None:
        core = ov.Core()
        model = core.read_model(str(path))
        channels = model.inputs[0].get_partial_shape()[1]
        self._batch = spec.batch_size
        model.reshape([self._batch, channels, spec.patch_size, spec.patch_size])
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(path.parent)}
        if spec.threads:
            # A thread budget means other processes share the CPU (Dask or pool workers):
            # OpenVINO would pin each process's threads to the same first cores, so two
            # 1-thread workers took turns on one core while the other idled.
            config["INFERENCE_NUM_THREADS"] = spec.threads
            config["ENABLE_CPU_PINNING"] = False
        self._request = core.compile_model(model, "CPU", config).create_infer_request()
        self._lock = threading.Lock()  # one infer request: threads (in-process jobs) take turns

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        n, x = batch.shape[0], batch
        if n < self._batch:  # the compiled shape is fixed: pad the last, short batch
            x = np.concatenate([x, np.zeros((self._batch - n, *x.shape[1:]), x.dtype)])
        with self._lock:
            out = self._request.infer({0: np.ascontiguousarray(x, np.float32)})[0]
            return sigmoid(out[:n, 0])  # a new array: the request reuses its output buffer
