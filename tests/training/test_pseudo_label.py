"""Self-training labels: confident pixels only, the rest ignored, never held out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.training_fixtures import write_road_folder
from training.io import read_binary
from training.preprocess import PreprocessConfig, Source, find_pairs, preprocess
from training.pseudo_label import PseudoConfig, main, pseudo_label


def test_only_confident_pixels_are_labelled() -> None:
    prob = np.full((40, 40), 0.5, np.float32)
    prob[:10] = 0.1  # confident background
    prob[20:26, :] = 0.9  # a confident road, 6 x 40 px
    prob[35, 35] = 0.95  # a confident speck
    road, valid = pseudo_label(prob, PseudoConfig(road=0.7, background=0.2), gsd_m=0.5)
    assert road[20:26].all() and road.sum() == 240  # the speck is not a road...
    assert not valid[35, 35]  # ...and not background either: ignored
    assert valid[:10].all() and valid[20:26].all() and not valid[10:20].any()


def test_grow_labels_a_faint_continuation_of_a_clear_road() -> None:
    prob = np.full((40, 60), 0.02, np.float32)
    prob[20:26, :40] = 0.9  # a clear road (240 px, above the speck size)...
    prob[20:26, 40:] = 0.3  # ...fading into a faint track
    prob[5:8, 10:50] = 0.3  # a faint line touching no clear road
    config = PseudoConfig(road=0.7, background=0.05, grow=0.25)
    road, valid = pseudo_label(prob, config, gsd_m=0.5)
    assert road[20:26].all() and road.sum() == 6 * 60  # the whole road, faint end included
    assert not road[5:8].any() and not valid[5:8, 10:50].any()  # a lone faint line: ignored
    plain, _ = pseudo_label(prob, PseudoConfig(road=0.7, background=0.05), gsd_m=0.5)
    assert plain.sum() == 6 * 40


def test_config_is_checked() -> None:
    from sanchari_processes.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        PseudoConfig(road=0.3, background=0.5)
    with pytest.raises(InvalidInputError):
        PseudoConfig(road=0.7, background=0.2, grow=0.1)


def test_cli_writes_a_train_only_pairs_folder(
    tmp_path: Path, make_tiny_checkpoint: Callable, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_road_folder(tmp_path / "target", n=2, size=64)
    ckpt = make_tiny_checkpoint(tmp_path / "m.safetensors")
    out = tmp_path / "pseudo"
    args = ["--weights", str(ckpt), "--images", str(src / "images"), "-o", str(out)]
    args += ["--gsd", "0.5", "--tta", "none", "--device", "cpu", "--road", "0.5"]
    assert main(args) == 0
    pairs = find_pairs(out)
    assert len(pairs) == 2 and all(p.valid is not None for p in pairs)
    assert read_binary(pairs[0].mask).shape == (64, 64)
    assert (out / "pseudo_labels.json").is_file()
    labelled = write_road_folder(tmp_path / "labelled", n=4, size=64)
    manifest = preprocess(
        [Source(labelled, 0.5), Source(out, 0.5, train_only=True)],
        tmp_path / "prep",
        PreprocessConfig(tile_size=64, val_fraction=0.5),
    )
    assert {i["split"] for i in manifest["images"] if i["source"] == "pseudo"} == {"train"}
    # a second run never overwrites labels silently
    assert main(args) == 1
    assert "not empty" in capsys.readouterr().err
