"""Backends: which one runs where, and that every runtime gives the torch model's output."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sanchari_processes.config import BACKENDS, InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_predictor, clear_runner_cache
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import backends
from sanchari_processes.inference.backends import CPU_PREFERENCE, resolve_backend


@pytest.fixture
def only(monkeypatch: pytest.MonkeyPatch):
    """Pretend only the named runtimes are installed."""

    def set_installed(*names: str) -> None:
        monkeypatch.setattr(backends, "installed", lambda name: name in names)

    return set_installed


def test_auto_prefers_the_fastest_installed_cpu_runtime(only) -> None:
    only("torch", "onnxruntime", "openvino")
    assert resolve_backend("auto", "cpu") == CPU_PREFERENCE[0] == "openvino"
    only("torch", "onnxruntime")
    assert resolve_backend("auto", "cpu") == "onnxruntime"
    only("torch")
    assert resolve_backend("auto", "cpu") == "torch"  # neither extra installed: plain torch


def test_cuda_stays_on_torch(only) -> None:
    only("torch", "onnxruntime", "openvino")
    assert resolve_backend("auto", "cuda") == "torch"
    with pytest.raises(InvalidInputError, match="--device cpu"):
        resolve_backend("openvino", "cuda")


def test_explicit_backends_are_checked(only) -> None:
    only("torch")
    with pytest.raises(InvalidInputError, match="pip install openvino"):
        resolve_backend("openvino", "cpu")
    with pytest.raises(InvalidInputError, match="unknown backend"):
        resolve_backend("tensorflow", "cpu")
    with pytest.raises(InvalidInputError, match="need openvino"):
        resolve_backend("auto", "cpu", precision="int8")
    with pytest.raises(InvalidInputError, match="does not run on torch"):
        resolve_backend("torch", "cpu", precision="int8")


def test_each_precision_goes_to_a_backend_that_runs_it(only) -> None:
    only("torch", "onnxruntime", "openvino")
    assert resolve_backend("auto", "cpu", precision="int8") == "openvino"
    assert resolve_backend("auto", "cpu", precision="fp16") == "openvino"
    only("torch", "onnxruntime")
    assert resolve_backend("auto", "cpu", precision="fp32") == "onnxruntime"
    with pytest.raises(InvalidInputError, match="runs on openvino"):
        resolve_backend("onnxruntime", "cpu", precision="fp16")
    assert resolve_backend("torch", "cuda", precision="fp16") == "torch"
    with pytest.raises(InvalidInputError, match="on CUDA"):
        resolve_backend("torch", "cpu", precision="fp16")


def test_auto_precision_takes_the_int8_network_only_where_openvino_can_run_it() -> None:
    int8 = {"fp32": {}, "int8": {}}
    assert backends.effective_precision("auto", "openvino", "cpu", int8) == "int8"
    assert backends.effective_precision("auto", "openvino", "cpu", {"fp32": {}}) == "auto"
    assert backends.effective_precision("auto", "onnxruntime", "cpu", int8) == "auto"
    assert backends.effective_precision("auto", "torch", "cuda", int8) == "auto"
    for asked in ("fp32", "fp16", "int8"):
        assert backends.effective_precision(asked, "openvino", "cpu", int8) == asked


def test_batch_size_defaults_per_device() -> None:
    assert backends.default_batch_size("cpu") == 1
    assert backends.default_batch_size("cuda") > 1


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, height, width), dtype=np.uint8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # one export for the module


@pytest.mark.parametrize(
    ("backend", "atol", "tta"),
    [("onnxruntime", 1e-4, "flip4"), ("openvino", 0.05, "none"), ("openvino", 0.05, "d4")],
)
def test_exported_runtimes_match_torch(
    tiny_checkpoint: Path, cache: Path, backend: str, atol: float, tta: str
) -> None:
    """ONNX Runtime is float32 like torch; OpenVINO may run bfloat16 on CPUs that have it."""
    if not backends.installed(backend):
        pytest.skip(f"{backend} not installed")
    config = InferenceConfig(patch_size=64, stride=48, tta=tta, device="cpu", backend="torch")
    options = EngineOptions(tiny_checkpoint, config, cache_dir=cache)
    image = _image(70, 100)
    reference = build_predictor(options).predict(image)
    exported = build_predictor(replace(options, inference=replace(config, backend=backend)))
    assert exported.runner.name == backend and exported.config.backend == backend
    np.testing.assert_allclose(exported.predict(image), reference, atol=atol)
    clear_runner_cache()


def test_every_backend_is_named_once() -> None:
    assert set(CPU_PREFERENCE) | {"auto"} == set(BACKENDS)


def test_openvino_with_a_thread_budget_does_not_pin_cores(
    tiny_checkpoint: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pinned, two 1-thread worker processes shared the first core (x1.0 on 2 cores)."""
    if not backends.installed("openvino"):
        pytest.skip("openvino not installed")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = InferenceConfig(patch_size=64, stride=48, tta="none", device="cpu", backend="openvino")
    runner = build_predictor(EngineOptions(tiny_checkpoint, config, cache_dir=cache)).runner
    compiled = runner._request.get_compiled_model()
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert compiled.get_property("ENABLE_CPU_PINNING") is False
    clear_runner_cache()


def test_openvino_keeps_compiled_blobs_in_the_cache_and_takes_a_precision_hint(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """The model folder may be read-only (an installed package): blobs go to CACHE/openvino."""
    if not backends.installed("openvino"):
        pytest.skip("openvino not installed")
    cache = tmp_path / "cache"
    config = InferenceConfig(
        patch_size=64, stride=48, tta="none", device="cpu", backend="openvino", precision="fp32"
    )
    runner = build_predictor(EngineOptions(tiny_checkpoint, config, cache_dir=cache)).runner
    compiled = runner._request.get_compiled_model()
    assert compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    assert runner.arithmetic == "f32"
    assert any((cache / "openvino").glob("*.blob"))
    clear_runner_cache()
