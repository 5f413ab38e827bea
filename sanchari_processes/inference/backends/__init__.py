"""Inference backends: one runtime per module behind :class:`Runner`, chosen by name.

A runner maps a batch of normalised patches to road probabilities; it knows nothing of
test-time augmentation, which the predictor applies around it, so one loaded runner serves
every TTA mode. ``torch`` runs
the checkpoint's network itself (CUDA with float16 autocast, or the CPU in channels-last);
``onnxruntime`` and ``openvino`` run the exported network the model folder carries, or one
exported once per checkpoint and cached (:mod:`sanchari_processes.inference.export`). The
exported runtimes never import torch, so the base install has none and a command starts in a
fraction of the time.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sanchari_processes.config import BACKENDS, CPU_BATCH_SIZE, CUDA_BATCH_SIZE
from sanchari_processes.errors import InvalidInputError

#: CPU backends in the order ``auto`` tries them: fastest first, as measured per 512² patch by
#: ``benchmarks/bench_vs_seed.py`` (OpenVINO < ONNX Runtime < torch channels-last), each within
#: the held-out IoU bar of the torch float32 path (see the model card's Speed section).
CPU_PREFERENCE = ("openvino", "onnxruntime", "torch")
#: The Python module each backend needs (openvino and onnxruntime come with the base install,
#: torch with the ``train`` extra).
_MODULES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}


class Runner(Protocol):
    """``(N, C, p, p)`` float32 normalised patches -> ``(N, p, p)`` float32 probabilities."""

    name: str
    device: str
    #: Whether the TTA views of a batch should go through as one call (a GPU).
    batch_views: bool
    #: The arithmetic the network runs in (``f32``, ``f16``, ``bf16`` or ``int8``).
    arithmetic: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class RunnerSpec:
    """Everything that picks and configures a runner (the cache key of a loaded one)."""

    weights: Path
    backend: str
    device: str
    patch_size: int
    batch_size: int
    precision: str = "auto"
    cache_dir: Path | None = None
    threads: int | None = None


def installed(backend: str) -> bool:
    """Whether ``backend``'s runtime can be imported (without importing it)."""
    return importlib.util.find_spec(_MODULES[backend]) is not None


def cuda_available() -> bool:
    """Whether torch sees a CUDA device. Importing torch costs seconds, so it is skipped where
    no NVIDIA driver is loaded (Linux); with one, or elsewhere, torch is asked."""
    if not installed("torch") or not _nvidia_driver_possible():
        return False
    import torch

    return torch.cuda.is_available()


def _nvidia_driver_possible() -> bool:
    """False only where it is certain: a Linux system whose kernel has no NVIDIA driver."""
    if not sys.platform.startswith("linux"):
        return True
    return Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is there, else ``cpu``; absent CUDA is an error."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise InvalidInputError("CUDA requested but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise InvalidInputError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'")
    return device


#: The precisions each backend runs (``fp16`` on torch: CUDA only).
SUPPORTED_PRECISIONS = {
    "torch": ("auto", "fp32", "fp16"),
    "onnxruntime": ("auto", "fp32"),
    "openvino": ("auto", "fp32", "fp16", "int8"),
}


def resolve_backend(backend: str, device: str, *, precision: str = "auto") -> str:
    """The backend that runs on ``device`` (already resolved): ``auto`` picks, others are checked.

    CUDA runs torch (with autocast); on a CPU ``auto`` takes the first installed backend of
    :data:`CPU_PREFERENCE` that runs ``precision``.
    """
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if device == "cuda":
            backend = "torch"
        else:
            choices = [b for b in CPU_PREFERENCE if installed(b) and runs(b, device, precision)]
            if not choices:
                raise InvalidInputError(
                    f"no installed backend runs precision {precision!r} on the CPU "
                    "(int8 and fp16 need openvino: pip install openvino)"
                )
            return choices[0]
    if not installed(backend):
        extra = " (the train extra: pip install 'sanchari-processes[train]')"
        raise InvalidInputError(
            f"backend {backend!r} is not installed: pip install {_MODULES[backend]}"
            f"{extra if backend == 'torch' else ''}, or use --backend auto"
        )
    if device == "cuda" and backend != "torch":
        raise InvalidInputError(f"backend {backend!r} runs on the CPU; use --device cpu")
    if not runs(backend, device, precision):
        where = " on CUDA" if backend == "torch" and precision == "fp16" else ""
        raise InvalidInputError(
            f"precision {precision!r} does not run on {backend}{where}; "
            f"{precision} runs on openvino (--backend openvino --device cpu)"
        )
    return backend


def effective_precision(
    precision: str, backend: str, device: str, exports: Mapping[str, object]
) -> str:
    """What ``precision`` runs as: ``auto`` on OpenVINO on a CPU takes the model's int8 network
    where the model folder carries one (measured faster on the CPU, and within the accuracy bar
    of float32 on held-out data: docs/performance.md#int8); otherwise it stays the backend's
    fastest float, and every explicit precision is kept."""
    if precision == "auto" and backend == "openvino" and device == "cpu" and "int8" in exports:
        return "int8"
    return precision


def runs(backend: str, device: str, precision: str) -> bool:
    """Whether ``backend`` on ``device`` runs ``precision``."""
    if backend == "torch" and precision == "fp16":
        return device == "cuda"
    return precision in SUPPORTED_PRECISIONS[backend]


def default_batch_size(device: str) -> int:
    """Patches per forward pass: measured best per device (see :data:`CPU_BATCH_SIZE`)."""
    return CUDA_BATCH_SIZE if device == "cuda" else CPU_BATCH_SIZE


def open_runner(spec: RunnerSpec) -> Runner:
    """Load the runner ``spec`` names (the exported model is built first when not cached)."""
    if spec.backend == "torch":
        from sanchari_processes.inference.backends.torch_runner import TorchRunner

        return TorchRunner.open(spec)
    from sanchari_processes.inference.export import exported_model

    network = "int8" if spec.precision == "int8" else "fp32"
    path = exported_model(spec.weights, spec.cache_dir, precision=network)
    if spec.backend == "onnxruntime":
        from sanchari_processes.inference.backends.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, spec)
    from sanchari_processes.inference.backends.openvino_runner import OpenVinoRunner

    return OpenVinoRunner(path, spec)
