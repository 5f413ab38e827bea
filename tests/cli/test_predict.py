"""The ``sanchari`` command: outputs, batch runs, plain images and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from PIL import Image
from shapely.geometry import shape

from sanchari_processes.cli import main
from tests.synthetic import road_image, write_geotiff


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def utm_tif(tmp_path):
    return write_geotiff(tmp_path / "scene.tif", road_image(96, 128))


@pytest.mark.parametrize(
    "command",
    [[], ["predict"], ["vectorize"], ["model-info"], ["model-init"], ["model-export"]],
)
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage:" in out


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


def test_vectorize_binary_mask(capsys, tmp_path):
    mask = np.zeros((1, 200, 200), np.uint8)
    mask[0, 95:105, :] = 255
    mask[0, :, 95:105] = 255
    path = write_geotiff(tmp_path / "mask.tif", mask)
    out = tmp_path / "roads.geojson"
    code, _, err = run(capsys, "vectorize", str(path), "-o", str(out))
    assert code == 0, err
    features = json.loads(out.read_text())["features"]
    assert len(features) == 4  # a cross: one junction, four arms to the border
    assert {f["properties"]["u_degree"] for f in features} | {
        f["properties"]["v_degree"] for f in features
    } == {1, 4}


def test_model_init_and_info(capsys, tmp_path):
    path = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "model-init", "--preset", "lite0", "-o", str(path))
    assert code == 0, err
    code, out, _ = run(capsys, "model-info", str(path))
    assert code == 0
    info = json.loads(out)
    assert info["metrics"]["untrained"] is True
    assert info["architecture"]["encoder_name"].endswith("lite0")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["predict", "nope.tif", "-o", "x.geojson"], 1, "input not found"),
        (["predict", "{tif}", "-o", "x.geojson", "--weights", "{tmp}/none"], 1, "none"),
        (["predict", "{tif}", "-o", "x.geojson", "--tta", "wild"], 2, "wild"),
        (["predict", "{tif}", "-o", "x.geojson", "--backend", "tpu"], 2, "tpu"),
        (["predict", "{tif}", "-o", "x.geojson", "--weights", "{ckpt}", "--int8",
          "--backend", "torch"], 1, "int8"),
        (["model-export", "{ckpt}", "--int8"], 2, "--calibration"),
        (["model-export", "{ckpt}", "--int8", "--calibration", "{tmp}/none"], 1, "not found"),
        (["predict", "{tif}", "-o", "x.geojson", "--threshold", "2"], 2, "threshold"),
        (["predict", "{tif}", "-o", "a.geojson", "--out-dir", "d"], 2, "exactly one"),
        (["predict", "{tif}"], 2, "exactly one"),
        (["predict", "{tif}", "-o", "{tmp}/no/such/dir/x.geojson", "--weights", "{ckpt}"], 1,
         "output directory does not exist"),
        (["predict", "{tif}", "-o", "x.geojson", "--weights", "{ckpt}", "--bands", "1,2,9"], 1,
         "band 9"),
        (["vectorize", "{tmp}/missing.tif", "-o", "x.geojson"], 1, "input not found"),
        (["vectorize", "{bad}", "-o", "x.geojson"], 1, "cannot read"),
        (["vectorize", "{float2}", "-o", "x.geojson"], 1, "0..1"),
        (["model-info", "{tmp}/none.safetensors"], 1, "none"),
        (["model-init", "--preset", "huge", "-o", "{tmp}/m.safetensors"], 1, "huge"),
        (["frobnicate"], 2, "frobnicate"),
    ],
)  # fmt: skip
def test_errors_are_one_line(capsys, tmp_path, utm_tif, tiny_checkpoint, args, status, message):
    (tmp_path / "bad.tif").write_bytes(b"garbage")
    float2 = write_geotiff(tmp_path / "f.tif", np.full((1, 8, 8), 2.0, np.float32))
    subs = {
        "{tif}": str(utm_tif),
        "{tmp}": str(tmp_path),
        "{ckpt}": str(tiny_checkpoint),
        "{bad}": str(tmp_path / "bad.tif"),
        "{float2}": str(float2),
    }
    for key, value in subs.items():
        args = [a.replace(key, value) for a in args]
    code, _, err = run(capsys, *args)
    assert code == status
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in err


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
    assert record["vectorize"]["threshold"] == 0.3


def test_model_export_builds_the_cache(capsys, tmp_path, tiny_checkpoint):
    cache = tmp_path / "cache"
    code, _, err = run(capsys, "model-export", str(tiny_checkpoint), "--cache-dir", str(cache))
    assert code == 0, err
    assert "float32 → " in err and list(cache.glob("models/*/model.onnx"))


def test_option_lists_are_defined_once():
    from sanchari_processes.cli import cli
    from sanchari_processes.config import BACKENDS, TTA_MODES
    from sanchari_processes.inputs import TTA

    params = {p.name: p for p in cli.commands["predict"].params}
    assert tuple(params["tta"].type.choices) == TTA_MODES
    assert tuple(params["backend"].type.choices) == BACKENDS
    assert tuple(TTA["enum"]) == TTA_MODES and TTA["default"] == params["tta"].default


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
