"""Preprocessing: pair discovery, 50 % overlap tiling, seeded per-image split, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.training_fixtures import road_pair, write_road_folder
from training.preprocess import (
    PreprocessConfig,
    Source,
    find_pairs,
    main,
    preprocess,
    resample_pair,
    tile_origins,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def test_tile_origins_cover_the_axis_with_half_overlap() -> None:
    assert tile_origins(1500, 512, 256) == [0, 256, 512, 768, 988]
    assert tile_origins(400, 512, 256) == [0]
    assert tile_origins(512, 512, 256) == [0]


def test_preprocess_tiles_and_splits_per_image(tmp_path: Path) -> None:
    src = write_road_folder(tmp_path / "roads", n=8, size=96, valid=True)
    config = PreprocessConfig(tile_size=64, val_fraction=0.25, seed=3, target_gsd_m=0.6)
    manifest = preprocess([Source(src, 0.6)], tmp_path / "out", config)
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
    again = preprocess([Source(src, 0.6)], tmp_path / "out2", config)
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

    assert main(["--source", str(tmp_path), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no image/mask pairs" in err and err.count("\n") == 1
    src = write_road_folder(tmp_path / "r", n=2)
    (src / "masks" / "tile1.png").unlink()
    assert main(["--source", str(src), "-o", str(tmp_path / "o")]) == 1
    assert "without a partner" in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED / "data/roads/massachusetts").is_dir(), reason="no ../shared")
def test_real_massachusetts_pairs_have_valid_masks() -> None:
    pairs = find_pairs(SHARED / "data/roads/massachusetts")
    assert len(pairs) == 51 and all(p.valid is not None for p in pairs)


def test_every_source_is_resampled_to_the_one_target_gsd(tmp_path: Path) -> None:
    """1 m and 0.5 m sources at target 0.5 m: the 1 m images double in size, and the
    checkpoint's gsd_m (the tiles') is exactly the training resolution."""
    coarse = write_road_folder(tmp_path / "coarse", n=2, size=64, valid=True)
    fine = write_road_folder(tmp_path / "fine", n=2, size=64)
    config = PreprocessConfig(tile_size=128, val_fraction=0.0, target_gsd_m=0.5)
    manifest = preprocess([Source(coarse, 1.0), Source(fine, 0.5)], tmp_path / "out", config)
    assert manifest["gsd_m"] == 0.5 and {t["gsd_m"] for t in manifest["tiles"]} == {0.5}
    shapes = {
        t["source"]: cv2.imread(str(tmp_path / "out" / t["image"])).shape[:2]
        for t in manifest["tiles"]
    }
    assert shapes == {"coarse": (128, 128), "fine": (64, 64)}
    # images keep their own GSD in the manifest: evaluation resamples the originals
    assert {i["source"]: i["gsd_m"] for i in manifest["images"]} == {"coarse": 1.0, "fine": 0.5}
    coarse_tile = next(t for t in manifest["tiles"] if t["source"] == "coarse")
    valid = cv2.imread(str(tmp_path / "out" / coarse_tile["valid"]), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(valid)) == {0, 255} and valid[:, :16].max() == 0  # nearest, 8 px -> 16


def test_resample_pair_interpolates_images_and_keeps_masks_binary() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, 5:] = 200
    mask = np.zeros((10, 10), bool)
    mask[4:6] = True
    small, small_mask, none = resample_pair(image, mask, None, 0.5)
    assert small.shape == (5, 5, 3) and small_mask.shape == (5, 5) and none is None
    assert small_mask.dtype == bool and small_mask.any()
    big, big_mask, _ = resample_pair(image, mask, None, 2.0)
    assert big_mask.sum() == 4 * mask.sum()
    assert big.shape == (20, 20, 3) and 0 < big[0, 9, 0] < 200  # bilinear across the step
    same = resample_pair(image, mask, None, 1.01)
    assert same[0] is image


def test_train_only_sources_are_never_held_out(tmp_path: Path) -> None:
    labelled = write_road_folder(tmp_path / "labelled", n=6, size=64)
    pseudo = write_road_folder(tmp_path / "pseudo", n=6, size=64, valid=True)
    config = PreprocessConfig(tile_size=64, val_fraction=0.5, target_gsd_m=0.5)
    manifest = preprocess(
        [Source(labelled, 0.5), Source(pseudo, 0.5, train_only=True)], tmp_path / "out", config
    )
    splits = {(i["source"], i["split"]) for i in manifest["images"]}
    assert ("pseudo", "val") not in splits and ("labelled", "val") in splits
    args = ["--source", str(labelled), "--train-only", "nope", "-o", str(tmp_path / "o")]

    assert main(args) == 1
