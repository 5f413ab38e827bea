"""training.evaluate on a hand-computable case, the model paths, threshold search, CLIs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sanchari_processes.inference import load_checkpoint, read_metadata
from tests.training_fixtures import write_road_folder
from training import (
    evaluate,
    export,
    optimize_threshold,
    preprocess,
    pseudo_label,
    train,
    train_lovasz,
)


def _write(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)


def test_exact_iou_accumulated_over_the_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_truth = np.zeros((20, 20), bool)
    a_truth[0:2, 0:5] = True  # 10 px
    a_pred = np.zeros((20, 20), bool)
    a_pred[0:2, 0:5] = True
    a_pred[0:2, 0:5][:, :] = True
    a_pred[0, 0:5] = False
    a_pred[5:6, 0:5] = True  # 5 hit + 5 false positives
    b_truth = np.zeros((20, 20), bool)
    b_truth[10:12, 0:10] = True  # 20 px, nothing predicted
    _write(tmp_path / "truth/a.png", a_truth)
    _write(tmp_path / "pred/a.png", a_pred)
    _write(tmp_path / "truth/b.png", b_truth)
    _write(tmp_path / "pred/b.png", np.zeros((20, 20), bool))
    args = ["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"), "--no-apls"]
    assert evaluate.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    # I = 5, U = (10 + 5 + 5) + 20 = 35 -> 1/7 (a mean of per-image IoUs would be 1/6)
    assert math.isclose(report["iou"], 5 / 35)
    assert (report["tp"], report["fp"], report["fn"]) == (5, 5, 25)
    assert report["relaxed_f1"] >= report["f1"]


def test_manifest_samples_are_also_scored_per_source(tmp_path: Path) -> None:
    truth = np.zeros((20, 20), bool)
    truth[0:2, 0:10] = True  # 20 px
    half = truth.copy()
    half[:, 5:] = False  # 10 of them
    for name, pred in (("cil_a", truth), ("cil_b", half), ("mass_a", np.zeros_like(truth))):
        _write(tmp_path / f"truth/{name}.png", truth)
        _write(tmp_path / f"pred/{name}.png", pred)
    samples = [
        evaluate.Sample(
            name=f"{name.split('_')[0]}/{name}",
            truth=tmp_path / f"truth/{name}.png",
            pred=tmp_path / f"pred/{name}.png",
        )
        for name in ("cil_a", "cil_b", "mass_a")
    ]
    report = evaluate.evaluate(evaluate.predict_samples(samples, None), with_apls=False)
    assert math.isclose(report["iou"], 30 / 60)
    assert report["by_source"]["cil"]["images"] == 2
    assert math.isclose(report["by_source"]["cil"]["iou"], 30 / 40)
    assert report["by_source"]["mass"]["iou"] == 0.0
    assert report["by_source"]["mass"]["fn"] == 20


def test_model_on_image_folder_with_apls(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_road_folder(tmp_path / "roads", n=2, size=64, valid=True)
    args = [
        "--weights",
        str(tiny_checkpoint),
        "--images",
        str(src / "images"),
        "--truth",
        str(src / "masks"),
        "--valid",
        str(src / "valid"),
        "--patch",
        "64",
        "--tta",
        "none",
        "--device",
        "cpu",
        "--per-image",
    ]
    assert evaluate.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2 and 0.0 <= report["apls"] <= 1.0
    assert report["tp"] + report["fp"] + report["fn"] + report["tn"] == 2 * 64 * (64 - 8)


def test_optimize_threshold_records_best(
    tmp_path: Path, make_tiny_checkpoint: Callable, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_road_folder(tmp_path / "roads", n=4, size=64)
    preprocess.preprocess(
        [preprocess.Source(src, 0.5)],
        tmp_path / "prep",
        preprocess.PreprocessConfig(tile_size=64, val_fraction=0.5),
    )
    ckpt = make_tiny_checkpoint(tmp_path / "m.safetensors")
    args = [
        "--weights",
        str(ckpt),
        "--manifest",
        str(tmp_path / "prep/manifest.json"),
        "--patch",
        "64",
        "--tta",
        "none",
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "t"),
        "--report",
        str(tmp_path / "report.json"),
    ]
    assert optimize_threshold.main(args) == 0
    meta = read_metadata(tmp_path / "t.safetensors")
    search = meta.metrics["threshold_search"]
    assert meta.threshold == search["threshold"] and search["iou"] >= search["iou_at_previous"]
    # The report scores the same probabilities at the chosen threshold: same IoU, plus the rest.
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["threshold"] == meta.threshold and report["images"] == search["images"]
    assert math.isclose(report["iou"], search["iou"], abs_tol=1e-3)
    assert {"precision", "recall", "f1", "relaxed_f1", "apls"} <= report.keys()


def test_export_writes_half_precision_with_reports(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "heldout.json"
    report.write_text(json.dumps({"iou": 0.61, "images": 44}))
    target = tmp_path / "ship/model.safetensors"
    args = ["--weights", str(tiny_checkpoint), "-o", str(target), "--model-id", "ship-1"]
    args += ["--report", f"heldout={report}"]
    assert export.main(args) == 0
    assert "float16" in capsys.readouterr().out
    meta = read_metadata(target)
    assert meta.model_id == "ship-1"
    assert meta.metrics["evaluation"]["heldout"]["iou"] == 0.61
    assert target.stat().st_size < 0.6 * tiny_checkpoint.stat().st_size
    loaded = load_checkpoint(target, "cpu")
    assert next(loaded.module.parameters()).dtype == torch.float32


def test_export_records_a_chosen_threshold_and_its_reason(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    searched = read_metadata(tiny_checkpoint).threshold
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"iou": 0.3, "images": 2, "threshold": 0.62}))
    target = tmp_path / "m.safetensors"
    args = ["--weights", str(tiny_checkpoint), "-o", str(target), "--report", f"dev={dev}"]
    # a report scored at another threshold than the release's is refused
    assert export.main(args) != 0
    assert "scored at threshold 0.62" in capsys.readouterr().err and not target.exists()
    assert export.main([*args, "--threshold", "0.62"]) != 0  # a reason is required
    capsys.readouterr()
    reason = ["--threshold", "0.62", "--threshold-reason", "dev set prefers it"]
    assert export.main([*args, *reason]) == 0
    meta = read_metadata(target)
    assert meta.threshold == 0.62
    assert meta.metrics["threshold_choice"] == {
        "threshold": 0.62,
        "search_threshold": searched,
        "reason": "dev set prefers it",
    }
    # the release carries its exported network, listed (with its hash) in its JSON
    assert list(meta.exports["fp32"]["files"]) == ["m.onnx"] and (tmp_path / "m.onnx").is_file()


def test_export_bad_report_is_one_error_line(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--weights", str(tiny_checkpoint), "-o", str(tmp_path / "m.safetensors")]
    assert export.main([*args, "--report", str(tmp_path / "x.json")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NAME=report.json" in err
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize(
    "module", [preprocess, train, train_lovasz, pseudo_label, optimize_threshold, evaluate, export]
)
def test_every_command_answers_help(module, capsys: pytest.CaptureFixture[str]) -> None:
    assert module.main(["--help"]) == 0
    assert "Usage: python -m training." in capsys.readouterr().out


def test_bad_input_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--truth", "x"]) == 1
    assert capsys.readouterr().err.startswith("error: give --pred")
    assert train.main(["--manifest", "m.json", "-o", "o", "--crop", "zero"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'--crop'" in err and err.count("\n") == 1
    assert train.main(["--manifest", "missing.json", "-o", "o"]) == 1
    assert "manifest not found" in capsys.readouterr().err


def test_images_are_scored_at_the_model_gsd(tmp_path: Path, make_tiny_checkpoint: Callable) -> None:
    """A 1 m image for a 0.5 m model is enlarged for the model and scored on its own grid."""
    from sanchari_processes.config import InferenceConfig
    from sanchari_processes.engine.build import EngineOptions, build_predictor
    from training.evaluate import predict_at_model_gsd

    ckpt = make_tiny_checkpoint(tmp_path / "m.safetensors", gsd_m=0.5)
    config = InferenceConfig(patch_size=64, stride=32, tta="none", device="cpu")
    predictor = build_predictor(EngineOptions(ckpt, config))
    seen: list[tuple[int, ...]] = []
    original = predictor.predict

    def spy(image, valid=None, **kw):
        seen.append(image.shape)
        return original(image, valid, **kw)

    predictor.predict = spy  # type: ignore[method-assign]
    image = np.zeros((40, 60, 3), np.uint8)
    valid = np.ones((40, 60), bool)
    valid[:, :5] = False
    prob = predict_at_model_gsd(predictor, image, valid, 1.0)
    assert seen == [(3, 80, 120)] and prob.shape == (40, 60)
    assert (prob[:, :5] == 0).all()
    predict_at_model_gsd(predictor, image, None, 0.505)  # within 2 %: not resampled
    assert seen[-1] == (3, 40, 60)


def test_pred_without_gsd_reports_pixel_metrics_and_skips_apls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_road_folder(tmp_path / "roads", n=2, size=64)
    args = ["--pred", str(src / "masks"), "--truth", str(src / "masks")]
    assert evaluate.main(args) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["iou"] == 1.0 and "apls" not in report
    assert "APLS skipped" in captured.err
