"""Preprocessing: pair discovery, 50 % overlap tiling, seeded per-image split, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.training_fixtures import road_pair, write_road_folder
from training.preprocess import PreprocessConfig, find_pairs, main, preprocess, tile_origins

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def test_tile_origins_cover_the_axis_with_half_overlap() -> None:
    assert tile_origins(1500, 512, 256) == [0, 256, 512, 768, 988]
    assert tile_origins(400, 512, 256) == [0]
    assert tile_origins(512, 512, 256) == [0]


def test_preprocess_tiles_and_splits_per_image(tmp_path: Path) -> None:
    src = write_road_folder(tmp_path / "roads", n=8, size=96, valid=True)
    config = PreprocessConfig(tile_size=64, val_fraction=0.25, seed=3)
    manifest = preprocess([(src, 0.6)], tmp_path / "out", config)
    assert len(manifest["images"]) == 8
    assert sum(i["split"] == "val" for i in manifest["images"]) == 2
    assert len(manifest["tiles"]) == 8 * 4  # starts 0 and 32 on both axes
    split_of = {i["name"]: i["split"] for i in manifest["images"]}
    assert all(t["split"] == split_of[t["origin"]] for t in manifest["tiles"])  # no leakage
    tile = manifest["tiles"][0]
    image = cv2.imread(str(tmp_path / "out" / tile["image"]))
    valid = cv2.imread(str(tmp_path / "out" / tile["valid"]), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (64, 64, 3) and tile["gsd_m"] == 0.6
    assert valid[:, :8].max() == 0 and valid[:, 8:].min() == 255
    again = preprocess([(src, 0.6)], tmp_path / "out2", config)
    assert [i["split"] for i in again["images"]] == [i["split"] for i in manifest["images"]]
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["config"]["stride"] == 32


def test_deepglobe_layout(tmp_path: Path) -> None:
    for i in range(2):
        image, mask = road_pair(64, i)
        cv2.imwrite(str(tmp_path / f"{i}_sat.jpg"), image)
        rgb_mask = np.repeat(mask[:, :, None].astype(np.uint8) * 255, 3, axis=2)
        cv2.imwrite(str(tmp_path / f"{i}_mask.png"), rgb_mask)
    cv2.imwrite(str(tmp_path / "9_sat.jpg"), image)  # unlabelled: ignored
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["0", "1"]


def test_cli_reports_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.cli import run_main

    assert run_main(main, ["--source", str(tmp_path), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no image/mask pairs" in err and err.count("\n") == 1
    src = write_road_folder(tmp_path / "r", n=2)
    (src / "masks" / "tile1.png").unlink()
    assert run_main(main, ["--source", str(src), "-o", str(tmp_path / "o")]) == 1
    assert "without a partner" in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED / "data/roads/massachusetts").is_dir(), reason="no ../shared")
def test_real_massachusetts_pairs_have_valid_masks() -> None:
    pairs = find_pairs(SHARED / "data/roads/massachusetts")
    assert len(pairs) == 51 and all(p.valid is not None for p in pairs)
