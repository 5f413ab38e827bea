"""CPU smoke tests of every phase on tiny synthetic tiles with a tiny network."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import load_checkpoint, read_metadata
from tests.training_fixtures import write_road_folder
from training.config import Augment, Phase, TrainConfig, phase2, phase3
from training.io import write_rgb
from training.loop import cosine_lr, train
from training.preprocess import PreprocessConfig, Source, preprocess


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    src = write_road_folder(root / "roads", n=5, size=64, valid=True)
    preprocess([Source(src, 0.5)], root / "prep", PreprocessConfig(tile_size=64, val_fraction=0.2))
    return root / "prep" / "manifest.json"


@pytest.fixture(scope="module")
def tiny_init(tmp_path_factory: pytest.TempPathFactory, make_tiny_checkpoint: Callable) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("init") / "tiny.safetensors")


def _config(manifest: Path, out: Path, init: Path, **kw: object) -> TrainConfig:
    base = TrainConfig(
        manifest=manifest,
        out_dir=out,
        init_weights=init,
        batch_size=2,
        accumulate=2,
        crop=64,
        augment=False,
        num_workers=0,
        progress=False,
        save_every=0,
        threads=2,
        phases=(Phase("main", lr=1e-2, epochs=12),),
    )
    return replace(base, **kw)


def _log(out: Path) -> list[dict[str, str]]:
    with (out / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_phase1_overfits_writes_log_and_reloads(
    manifest: Path, tiny_init: Path, tmp_path: Path
) -> None:
    best = train(_config(manifest, tmp_path / "run", tiny_init))
    rows = [r for r in _log(tmp_path / "run") if r["epoch_complete"] == "True"]
    assert len(rows) == 12
    assert float(rows[-1]["train_loss"]) < 0.8 * float(rows[0]["train_loss"])
    loaded = load_checkpoint(best, "cpu")
    meta = loaded.metadata
    assert meta.metrics["val_iou"] == max(float(r["val_iou"]) for r in _log(tmp_path / "run"))
    # the threshold-free IoU: the fixed threshold 0.5 is a candidate, so it is never lower
    for r in rows:
        assert float(r["val_iou_best"]) >= float(r["val_iou"]) - 1e-9
        assert 0.05 <= float(r["val_threshold_best"]) <= 0.95
    assert meta.metrics["training"]["recipe"]["effective_batch"] == 4
    assert "held-out" in meta.data and meta.gsd_m == 0.5


def test_resume_rewrites_an_older_log_under_todays_columns(
    manifest: Path, tiny_init: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = _config(manifest, out, tiny_init, max_steps=1)
    train(config)
    # the log an older version wrote: fewer columns
    old_fields = ["time", "phase", "epoch", "step", "val_iou", "epoch_complete"]
    rows = [{k: r[k] for k in old_fields} for r in _log(out)]
    with (out / "log.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=old_fields)
        writer.writeheader()
        writer.writerows(rows)
    train(replace(config, resume=True, max_steps=2))
    log = _log(out)
    assert [{k: r[k] for k in old_fields} for r in log[: len(rows)]] == rows
    assert all(r["val_iou_best"] == "" for r in log[: len(rows)])
    assert log[-1]["step"] == "2" and log[-1]["val_iou_best"] != ""


def test_max_steps_then_resume_continues(manifest: Path, tiny_init: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = _config(manifest, out, tiny_init, max_steps=2)
    train(config)
    assert _log(out)[-1]["step"] == "2"
    with pytest.raises(InvalidInputError, match="already exists"):
        train(config)
    train(replace(config, resume=True, max_steps=3))
    steps = [r["step"] for r in _log(out)]
    # a stop on an epoch's last batch completes it: resuming logs no empty epoch (NaN loss)
    assert steps[-1] == "3" and len(steps) == len(set(steps))
    assert read_metadata(out / "last.safetensors").metrics["step"] == 3


def test_hard_mining_and_lovasz_phases(
    manifest: Path, tiny_init: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    main = Phase("main", lr=1e-2, epochs=1)
    train(_config(manifest, out, tiny_init, phases=(main,)))
    # a finished Phase-1 run gains Phase 2 by resuming with --hard-mining
    phases = (main, replace(phase2(epochs=1), hard_fraction=0.5))
    train(_config(manifest, out, tiny_init, phases=phases, resume=True))
    assert [r["phase"] for r in _log(out)] == ["main", "main", "hard", "hard"]
    with pytest.raises(InvalidInputError, match="every phase of this run is finished"):
        train(_config(manifest, out, tiny_init, phases=phases, resume=True))
    assert re.search(r"hard mining: the (\d+) of (\d+) training tiles", capsys.readouterr().out)
    lovasz = train(
        _config(manifest, tmp_path / "lov", out / "best.safetensors", phases=(phase3(epochs=1),))
    )
    assert (
        load_checkpoint(lovasz, "cpu").metadata.metrics["training"]["recipe"]["phases"][0]["loss"]
        == "lovasz"
    )


def test_lite0_preset_with_imagenet_init(manifest: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        manifest=manifest,
        out_dir=tmp_path / "lite",
        preset="lite0",
        batch_size=2,
        accumulate=1,
        crop=64,
        num_workers=0,
        progress=False,
        max_steps=1,
        threads=2,
    )
    meta = read_metadata(train(config))
    assert meta.preset == "lite0" and meta.mean == (0.5, 0.5, 0.5)
    assert "efficientnet-lite0" in meta.metrics["training"]["imagenet_init"]


def test_cosine_schedule() -> None:
    assert cosine_lr(1.0, 0, 10) == 1.0
    assert abs(cosine_lr(1.0, 5, 10) - 0.5) < 1e-12
    assert cosine_lr(1.0, 10, 10) == 0.0


def test_domain_robust_options_train_and_are_recorded(
    manifest: Path, tiny_init: Path, tmp_path: Path
) -> None:
    styles = tmp_path / "styles"
    styles.mkdir()
    write_rgb(styles / "target.png", np.full((32, 32, 3), (150, 110, 70), np.uint8))
    options = Augment(photometric=True, scale=(0.7, 1.4), style="fda", style_p=0.5, nodata_p=0.5)
    config = _config(
        manifest,
        tmp_path / "run",
        tiny_init,
        augment=True,
        augment_options=options,
        style_dir=styles,
        source_balance=1.0,
        epoch_tiles=6,
        phases=(Phase("main", lr=1e-2, epochs=2),),
    )
    meta = read_metadata(train(config))
    recipe = meta.metrics["training"]["recipe"]
    assert recipe["augment_options"] == {
        "photometric": True,
        "scale": [0.7, 1.4],
        "style": "fda",
        "style_p": 0.5,
        "nodata_p": 0.5,
    }
    assert recipe["style_dir"] == str(styles) and recipe["source_balance"] == 1.0
    # 6 samples per epoch in batches of 2, accumulating 2: 2 optimizer steps per epoch
    rows = [r for r in _log(tmp_path / "run") if r["epoch_complete"] == "True"]
    assert [r["step"] for r in rows] == ["2", "4"]
