"""``sanchari predict``: outputs, batch runs, plain images, provenance and a fast failure."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from PIL import Image
from shapely.geometry import shape

from tests.cli_fixtures import run
from tests.synthetic import road_image, write_geotiff


def test_predict_writes_geojson_mask_and_probability(capsys, tmp_path, utm_tif, tiny_checkpoint):
    out = tmp_path / "roads.geojson"
    code, _, err = run(
        capsys, "predict", str(utm_tif), "-o", str(out), "--weights", str(tiny_checkpoint),
        "--tta", "none", "--mask-out", str(tmp_path / "mask.tif"),
        "--prob-out", str(tmp_path / "prob.tif"), "--preview", str(tmp_path / "p.png"),
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    collection = json.loads(out.read_text())
    assert collection["type"] == "FeatureCollection"
    assert collection["sanchari"]["model"]["id"] == "tiny-test"
    assert collection["sanchari"]["source"]["crs"] == "EPSG:32633"
    for feature in collection["features"]:
        assert shape(feature["geometry"]).is_valid
    with rasterio.open(tmp_path / "mask.tif") as mask, rasterio.open(tmp_path / "prob.tif") as prob:
        assert (mask.height, mask.width) == (96, 128) and mask.crs.to_epsg() == 32633
        assert set(np.unique(mask.read(1))) <= {0, 255}
        p = prob.read(1)
        assert p.dtype == np.float32 and 0.0 <= p.min() <= p.max() <= 1.0
        np.testing.assert_array_equal(mask.read(1) == 255, p > 0.45)
    with Image.open(tmp_path / "p.png") as png:
        assert png.size == (128, 96)


def test_predict_batch_directory(capsys, tmp_path, tiny_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        write_geotiff(folder / f"{name}.tif", road_image(64, 64))
    code, _, err = run(
        capsys, "predict", str(folder), "--out-dir", str(tmp_path / "out"),
        "--weights", str(tiny_checkpoint), "--tta", "none",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.geojson", "b.geojson"]


def test_predict_plain_png_says_pixel_coordinates(capsys, tmp_path, tiny_checkpoint):
    from PIL import Image

    Image.fromarray(road_image(64, 80).transpose(1, 2, 0)).save(tmp_path / "photo.png")
    out = tmp_path / "photo.geojson"
    code, _, err = run(
        capsys, "predict", str(tmp_path / "photo.png"), "-o", str(out),
        "--weights", str(tiny_checkpoint), "--tta", "none",
    )  # fmt: skip
    assert code == 0, err
    assert "pixel" in err
    assert json.loads(out.read_text())["sanchari:coordinates"] == "pixel"


def test_failed_run_keeps_existing_output(capsys, tmp_path, utm_tif):
    out = tmp_path / "roads.geojson"
    out.write_text("precious")
    code, _, _ = run(capsys, "predict", str(utm_tif), "-o", str(out), "--weights", "missing")
    assert code == 1 and out.read_text() == "precious"


def test_provenance_names_what_ran(capsys, tmp_path, utm_tif, tiny_checkpoint):
    out = tmp_path / "roads.geojson"
    code, _, err = run(
        capsys, "predict", str(utm_tif), "-o", str(out), "--weights", str(tiny_checkpoint),
        "--tta", "flip4", "--backend", "torch", "--threshold", "0.3", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out.read_text())["sanchari"]
    assert record["inference"]["backend"] == "torch" and record["inference"]["tta"] == "flip4"
    assert record["inference"]["batch_size"] == 1 and record["inference"]["device"] == "cpu"
    assert record["inference"]["precision"] == "auto"
    assert record["inference"]["arithmetic"] == "f32"  # torch on a CPU
    assert record["vectorize"]["threshold"] == 0.3


def test_start_up_and_stage_times_are_reported(capsys, tmp_path, utm_tif, tiny_checkpoint):
    """What the benchmarks read: seconds to the first patch, then each stage's."""
    import re

    out = tmp_path / "roads.geojson"
    code, _, err = run(
        capsys, "predict", str(utm_tif), "-o", str(out), "--weights", str(tiny_checkpoint),
        "--tta", "flip4", "--backend", "torch", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert re.search(r"first patch [0-9.]+ s after start", err)
    found = re.search(
        r"stages: model ([0-9.]+) s \(network ([0-9.]+) s for (\d+) patch(es)?\), "
        r"vectorize ([0-9.]+) s, write ([0-9.]+) s; whole command ([0-9.]+) s",
        err,
    )
    assert found, err
    model, network, patches = float(found[1]), float(found[2]), int(found[3])
    whole = float(found[7])
    assert 0 < network <= model <= whole and patches >= 1
    assert model + float(found[5]) + float(found[6]) <= whole


def test_a_missing_input_is_answered_before_the_model_loads(tmp_path):
    """No torch, runtime or model is imported to say a file is missing (it took 6 s)."""
    import subprocess
    import sys

    code = (
        "import sys; from sanchari_processes.cli import main; "
        f"rc = main(['predict', {str(tmp_path / 'nope.tif')!r}, '-o', 'x.geojson']); "
        "heavy = {'torch', 'openvino', 'onnxruntime', 'numba'} & set(sys.modules); "
        "print(rc, sorted(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["1", "[]"], done.stdout + done.stderr
    assert "input not found" in done.stderr
