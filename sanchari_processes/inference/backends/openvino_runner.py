"""The exported network on OpenVINO's CPU plugin, compiled for the patch shape.

For the float network, precision ``auto`` lets OpenVINO pick the CPU's fastest (bfloat16 where
the CPU has it, e.g. AVX512-BF16 or AMX; float32 elsewhere); the masks agree with torch float32
within the accuracy bar (model card, Speed). ``fp32``/``fp16`` set its inference precision
hint; ``int8`` is a different network (the NNCF-quantised IR), which ``auto`` becomes where the
model carries one (:func:`~sanchari_processes.inference.backends.effective_precision`).
Compiled blobs are kept in the user cache folder (``CACHE/openvino``), so a later start skips
compilation.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import openvino as ov

from sanchari_processes.inference.backends import RunnerSpec
from sanchari_processes.inference.tta import sigmoid

#: OpenVINO's inference precision hint for the float precisions the user may force.
_HINTS = {"fp32": "f32", "fp16": "f16"}


def compiled_cache(cache_dir: Path | None) -> Path:
    """Where compiled blobs are kept: ``CACHE/openvino`` (the model folder may be read-only)."""
    if cache_dir is None:
        from sanchari_processes.settings import default_cache_dir

        cache_dir = default_cache_dir()
    return Path(cache_dir) / "openvino"


def static_network(
    core: ov.Core, path: Path, cache: Path, batch: int, patch: int
) -> str | ov.Model:
    """The network at the compiled shape, as an IR file in ``cache`` written on first use.

    Compiled from a file, OpenVINO finds its cached blob without parsing or reshaping the
    network (a warm start saves ~0.4 s); the file's name follows the source file's path, size
    and time, so a replaced network gets a new one. Where ``cache`` cannot be written, the
    network is reshaped in memory.
    """
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    xml = cache / f"{path.stem}-{key.hexdigest()[:16]}-{batch}x{patch}.xml"
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return str(xml)
    model = core.read_model(str(path))
    channels = model.inputs[0].get_partial_shape()[1]
    model.reshape([batch, channels, patch, patch])
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".ir-"))
        try:
            ov.save_model(model, str(staging / xml.name), compress_to_fp16=False)
            os.replace(staging / xml.with_suffix(".bin").name, xml.with_suffix(".bin"))
            os.replace(staging / xml.name, xml)  # the .xml last: it marks the pair complete
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError:
        return model
    return str(xml)


class OpenVinoRunner:
    """An OpenVINO compiled model and its infer request (state: both)."""

    name = "openvino"
    device = "cpu"
    batch_views = False

    def __init__(self, path: Path, spec: RunnerSpec) -> None:
        core = ov.Core()
        self._batch = spec.batch_size
        cache = compiled_cache(spec.cache_dir)
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(cache)}
        if spec.precision in _HINTS:
            config["INFERENCE_PRECISION_HINT"] = _HINTS[spec.precision]
        if spec.threads:
            # A thread budget means other processes share the CPU (Dask or pool workers):
            # OpenVINO would pin each process's threads to the same first cores, so two
            # 1-thread workers took turns on one core while the other idled.
            config["INFERENCE_NUM_THREADS"] = spec.threads
            config["ENABLE_CPU_PINNING"] = False
        network = static_network(core, path, cache, self._batch, spec.patch_size)
        compiled = core.compile_model(network, "CPU", config)
        #: What the CPU plugin computes in (``bf16`` where ``auto`` or ``fp16`` found bfloat16
        #: the CPU's fastest), or ``int8`` for the quantised network: the provenance records it.
        float_type = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.arithmetic = "int8" if spec.precision == "int8" else str(float_type)
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: threads (in-process jobs) take turns

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        n, x = batch.shape[0], batch
        if n < self._batch:  # the compiled shape is fixed: pad the last, short batch
            x = np.concatenate([x, np.zeros((self._batch - n, *x.shape[1:]), x.dtype)])
        with self._lock:
            out = self._request.infer({0: np.ascontiguousarray(x, np.float32)})[0]
            return sigmoid(out[:n, 0])  # a new array: the request reuses its output buffer
