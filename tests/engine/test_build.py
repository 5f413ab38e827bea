"""The one engine builder: defaults decided once, from the CLI's and the service's options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sanchari_processes.config import DEFAULT_SIMPLIFY_M, DEFAULT_TTA, InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_engine, clear_runner_cache
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference.backends import Runner, RunnerSpec
from sanchari_processes.inputs import RequestOptions
from sanchari_processes.service.settings import ProcessSettings


@pytest.fixture
def options(tiny_checkpoint: Path) -> EngineOptions:
    config = InferenceConfig(patch_size=64, device="cpu", backend="torch")
    return EngineOptions(tiny_checkpoint, config)


def test_checkpoint_threshold_unless_the_user_chose(options: EngineOptions) -> None:
    engine = build_engine(options)
    assert engine.vectorize.threshold == engine.metadata.threshold == 0.45
    assert engine.vectorize.simplify_m == DEFAULT_SIMPLIFY_M
    assert build_engine(replace(options, threshold=0.7)).vectorize.threshold == 0.7
    clear_runner_cache()


def test_resolved_settings_are_what_runs(options: EngineOptions) -> None:
    predictor = build_engine(options).predictor
    assert predictor.config.device == "cpu" and predictor.config.backend == "torch"
    assert predictor.config.batch_size == 1 and predictor.config.tta == DEFAULT_TTA
    assert predictor.config.stride == 48 and predictor.config.edge_margin == 0
    clear_runner_cache()


def test_one_runner_serves_every_tta_mode(options: EngineOptions) -> None:
    """TTA is applied by the predictor around the runner: no mode loads (or compiles) another."""
    engines = [
        build_engine(replace(options, inference=replace(options.inference, tta=mode)))
        for mode in ("none", "flip4", "d4")
    ]
    assert len({id(engine.predictor.runner) for engine in engines}) == 1
    assert [engine.predictor.config.tta for engine in engines] == ["none", "flip4", "d4"]
    clear_runner_cache()


def test_bad_options_are_input_errors(options: EngineOptions) -> None:
    with pytest.raises(InvalidInputError, match="threshold"):
        replace(options, threshold=1.5)
    with pytest.raises(InvalidInputError, match="CUDA requested"):
        build_engine(replace(options, inference=replace(options.inference, device="cuda")))


def test_service_settings_and_request_make_the_same_options(tiny_checkpoint: Path) -> None:
    settings = ProcessSettings.from_mapping(
        {"weights": str(tiny_checkpoint), "backend": "onnxruntime", "cache_dir": "/tmp/c"}
    )
    request = RequestOptions.parse(
        {"latitude": 1.0, "longitude": 2.0, "tta": "d4", "threshold": 0.3}
    )
    options = settings.engine.options(request)
    assert options.inference.backend == "onnxruntime" and options.inference.tta == "d4"
    assert options.threshold == 0.3 and options.cache_dir == Path("/tmp/c")
    default = settings.engine.options(RequestOptions.parse({"latitude": 1.0, "longitude": 2.0}))
    assert default.inference.tta == DEFAULT_TTA and default.threshold is None
    with pytest.raises(ValueError, match="backend"):
        ProcessSettings.from_mapping({"backend": "tpu"})


def test_an_auto_int8_falls_back_to_torch_in_float(
    options: EngineOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``auto`` chose the model's int8 network; OpenVINO cannot start, so torch runs the float
    network (an int8 the user asked for fails instead: torch has none)."""
    from sanchari_processes.engine import build
    from sanchari_processes.inference import backends

    if not backends.installed("openvino"):
        pytest.skip("needs openvino installed (the base install has it)")
    opened: list[tuple[str, str]] = []
    real = build._runner_cached

    def runner_cached(spec: RunnerSpec, key: tuple[int, int]) -> Runner:
        opened.append((spec.backend, spec.precision))
        if spec.backend == "openvino":
            raise RuntimeError("no OpenVINO here")
        return real(spec, key)

    monkeypatch.setattr(build, "_runner_cached", runner_cached)
    # as for a model that carries an int8 network (the tiny one does not)
    monkeypatch.setattr(backends, "effective_precision", lambda p, *_: "int8" if p == "auto" else p)
    auto = replace(options.inference, backend="auto")
    predictor = build_engine(replace(options, inference=auto)).predictor
    assert opened == [("openvino", "int8"), ("torch", "auto")]
    assert predictor.runner.name == "torch" and predictor.config.precision == "auto"
    with pytest.raises(RuntimeError, match="no OpenVINO"):
        build_engine(replace(options, inference=replace(auto, precision="int8")))
    monkeypatch.undo()
    clear_runner_cache()
