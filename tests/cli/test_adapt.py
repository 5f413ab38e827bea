"""``sanchari adapt``: a model folder from your roads, and one clear line for each mistake."""

from __future__ import annotations

import json
from pathlib import Path

from sanchari_processes.inference.metadata import read_metadata
from tests.adapt.conftest import road_lines_lonlat
from tests.cli_fixtures import run
from tests.synthetic import road_image, write_geotiff


def _scene(tmp_path: Path) -> tuple[Path, Path]:
    image = write_geotiff(tmp_path / "scene.tif", road_image(256, 256))
    roads = tmp_path / "roads.geojson"
    roads.write_text(json.dumps(road_lines_lonlat()))
    return image, roads


def test_recalibrate_then_predict_with_the_folder(capsys, tmp_path, tiny_checkpoint):
    image, roads = _scene(tmp_path)
    out = tmp_path / "model"
    code, _, err = run(
        capsys, "adapt", str(image), "--roads", str(roads), "-o", str(out),
        "--weights", str(tiny_checkpoint), "--no-finetune", "--tta", "none", "--name", "region",
    )  # fmt: skip
    assert code == 0, err
    assert "region: recalibrated" in err
    meta = read_metadata(out)
    assert meta.model_id == "region" and (out / "MODEL_CARD.md").is_file()
    code, _, err = run(
        capsys, "predict", str(image), "-o", str(tmp_path / "r.geojson"), "--weights", str(out),
        "--tta", "none", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "r.geojson").read_text())["sanchari"]["model"]["id"] == "region"


def test_mistakes_are_one_line(capsys, tmp_path, tiny_checkpoint):
    image, roads = _scene(tmp_path)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("mine")
    cases = [
        (["--roads", str(roads), "-o", str(taken)], "not empty"),
        (["--roads", str(tmp_path / "none.geojson"), "-o", str(tmp_path / "a")], "roads"),
        (["--roads", str(roads), "-o", str(tmp_path / "b"), "--minutes", "0"], "--minutes"),
    ]
    for extra, expected in cases:
        code, _, err = run(capsys, "adapt", str(image), "--weights", str(tiny_checkpoint), *extra)
        assert code in (1, 2) and expected in err, err
        assert err.count("\n") == 1 and err.startswith("error:"), err
    assert (taken / "x").read_text() == "mine"  # nothing already there is touched
