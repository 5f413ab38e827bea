"""The guarded adaptation end to end on the tiny model: a model folder, its card, the verdict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sanchari_processes.adapt import run as run_module
from sanchari_processes.adapt.config import AdaptConfig
from sanchari_processes.adapt.labels import read_roads, roads_from_geojson
from sanchari_processes.adapt.run import _verdict, adapt
from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_engine
from sanchari_processes.errors import BackendUnavailableError, InvalidInputError
from sanchari_processes.inference.export import export_beside
from sanchari_processes.inference.metadata import file_sha256, read_metadata

FAST = {"steps": 3, "crop": 64, "batch": 2, "minutes": 0.5, "tta": "none", "block_m": 32.0}
FAST_CONFIG = AdaptConfig(**FAST)


def test_adapting_writes_a_model_with_its_card(
    scene: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    image, roads = scene
    out = tmp_path / "model"
    result = adapt(
        [image], read_roads(roads), out, weights=tiny_checkpoint, config=AdaptConfig(**FAST)
    )
    meta = read_metadata(out)
    report = meta.metrics["adaptation"]
    assert meta.model_id == result.model_id and report["parent"]["model_id"] == "tiny-test"
    assert report["verdict"].split(":")[0] in {"adapted", "recalibrated"}
    cv = report["cross_validation"]
    assert cv["steps"] == [3, 3] and len(cv["adapted_folds"]) == len(cv["base_folds"]) == 2
    if report["verdict"].startswith("adapted"):  # the shipped model: a third run on all blocks
        assert cv["final_steps"] == 3 and meta.threshold == cv["final_threshold"]
        assert f"labelled pixels ({meta.threshold:.2f}" in (out / "MODEL_CARD.md").read_text()
    assert 0.0 <= meta.threshold <= 1.0 and meta.threshold == report["threshold"]
    assert report["data"]["labelled_km2"] > 0 and 0 < report["data"]["road_share"] < 0.5
    card = (out / "MODEL_CARD.md").read_text()
    assert result.model_id in card and "out of fold" in card
    engine = build_engine(EngineOptions(out, InferenceConfig(tta="none", patch_size=64)))
    assert engine.vectorize.threshold == meta.threshold  # extraction runs at the region's threshold


def test_a_fine_tune_that_does_not_win_is_not_shipped(
    scene: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    image, roads = scene
    config = AdaptConfig(**{**FAST, "min_gain": 1.0})  # nothing gains a whole IoU
    adapt([image], read_roads(roads), tmp_path / "m", weights=tiny_checkpoint, config=config)
    meta = read_metadata(tmp_path / "m")
    report = meta.metrics["adaptation"]
    assert report["verdict"].startswith("recalibrated") and "final_steps" not in report
    # the re-chosen threshold only where it won out of fold, else the base's own
    won = report["cross_validation"]["recalibrated_iou"] > report["cross_validation"]["base_iou"]
    expected = report["recalibrated"]["threshold"] if won else report["base"]["threshold"]
    assert meta.threshold == expected
    assert meta.weights_sha256 == file_sha256(tiny_checkpoint)  # the base weights, unchanged


def test_recalibration_only(
    scene: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    image, roads = scene
    config = AdaptConfig(**{**FAST, "finetune": False})
    adapt(
        [image],
        read_roads(roads),
        tmp_path / "m",
        weights=tiny_checkpoint,
        config=config,
        name="mine",
    )
    meta = read_metadata(tmp_path / "m")
    report = meta.metrics["adaptation"]
    assert meta.model_id == "mine" and "adapted_iou" not in report["cross_validation"]
    assert json.loads((tmp_path / "m" / "mine.json").read_text())["threshold"] == meta.threshold


def test_adapted_models_carry_their_exported_network(
    scene: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """Fine-tuned: its own network is exported beside it; recalibrated: the base's is copied.
    Either way the base install (no torch) runs the adapted model."""
    image, roads = scene
    base = tmp_path / "base" / "tiny.safetensors"
    base.parent.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_checkpoint.with_suffix(suffix), base.with_suffix(suffix))
    export_beside(base)
    tuned = AdaptConfig(**{**FAST, "min_gain": -1.0})  # the fine-tune is always kept
    adapt([image], read_roads(roads), tmp_path / "t", weights=base, config=tuned, name="t")
    meta = read_metadata(tmp_path / "t")
    report = meta.metrics["adaptation"]
    assert report["verdict"].startswith("adapted")
    # the final model's own threshold, chosen on its predictions of the labelled pixels
    cv = report["cross_validation"]
    assert meta.threshold == report["threshold"] == cv["final_threshold"]
    assert (
        f"labelled pixels ({meta.threshold:.2f}" in (tmp_path / "t" / "MODEL_CARD.md").read_text()
    )
    assert meta.exports["fp32"]["files"] == {"t.onnx": file_sha256(tmp_path / "t" / "t.onnx")}
    recal = AdaptConfig(**{**FAST, "finetune": False})
    adapt([image], read_roads(roads), tmp_path / "r", weights=base, config=recal, name="r")
    meta = read_metadata(tmp_path / "r")
    assert meta.exports["fp32"]["files"] == {"r.onnx": file_sha256(base.with_suffix(".onnx"))}


def test_fine_tuning_without_torch_names_the_extra(
    scene: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "installed", lambda name: name != "torch")
    image, roads = scene
    with pytest.raises(BackendUnavailableError, match=r"sanchari-processes\[train\]"):
        adapt(
            [image], read_roads(roads), tmp_path / "m", weights=tiny_checkpoint, config=FAST_CONFIG
        )


def test_roads_that_miss_the_imagery(
    scene: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    far = {"type": "LineString", "coordinates": [[100.0, 10.0], [100.01, 10.01]]}
    with pytest.raises(InvalidInputError, match="too few labelled pixels"):
        adapt(
            [scene[0]],
            roads_from_geojson(far),
            tmp_path / "m",
            weights=tiny_checkpoint,
            config=AdaptConfig(**FAST),
        )


@pytest.mark.parametrize("bad", [{"minutes": 0.1}, {"minutes": 500}, {"road_width_m": 0}])
def test_budgets_and_widths_out_of_range(bad: dict) -> None:
    with pytest.raises(InvalidInputError):
        AdaptConfig(**bad)


def _cv(adapted: list[float], base: list[float], recal: list[float]) -> dict:
    pooled = {"adapted_iou": sum(adapted) / 2, "base_iou": sum(base) / 2}
    return {
        **pooled,
        "recalibrated_iou": sum(recal) / 2,
        "adapted_folds": adapted,
        "base_folds": base,
        "recalibrated_folds": recal,
        "threshold": 0.3,
    }


def test_the_guard_wants_a_win_on_both_folds_against_both_baselines() -> None:
    assert _verdict(_cv([0.5, 0.5], [0.3, 0.3], [0.4, 0.4]), 0.005, "")[0] == 0.3
    # a big win on one fold does not carry a loss on the other
    threshold, verdict = _verdict(_cv([0.9, 0.35], [0.3, 0.3], [0.4, 0.4]), 0.005, "")
    assert threshold is None and "lost on fold 2" in verdict
    # the base model at its own threshold counts too, not only the recalibrated one
    assert _verdict(_cv([0.5, 0.5], [0.3, 0.55], [0.4, 0.4]), 0.005, "")[0] is None
    assert _verdict(_cv([0.402, 0.402], [0.3, 0.3], [0.4, 0.4]), 0.005, "")[0] is None
