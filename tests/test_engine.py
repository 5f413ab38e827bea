"""The streaming engine: block plans, exact reassembly, GSD resampling, masks, end to end."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from rasterio.enums import ColorInterp
from shapely.geometry import box, shape

from sanchari_processes.config import InferenceConfig, VectorizeConfig
from sanchari_processes.engine import extract_roads, model_scale, plan_blocks, predict_probability
from sanchari_processes.inference import Predictor, load_checkpoint
from sanchari_processes.sources import open_raster
from tests.synthetic import road_image, write_geotiff


class PixelPredictor:
    """A stand-in model whose output is a known per-pixel function (red / 255).

    Any seam, misplaced block, halo error or georeferencing slip in the streaming shows up as a
    difference from that function. It records the image shapes it was given.
    """

    def __init__(self, gsd_m: float = 0.5) -> None:
        self.metadata = SimpleNamespace(gsd_m=gsd_m, bands=("red", "green", "blue"))
        self.shapes: list[tuple[int, ...]] = []

    def predict(self, image, valid=None, progress=None, margin=None):
        self.shapes.append(image.shape)
        prob = image[0].astype(np.float32) / 255.0
        if valid is not None:
            prob[~valid] = 0.0
        if progress:
            progress(1, 1)
        return prob


@pytest.mark.parametrize(("height", "width", "size", "halo"), [(100, 70, 32, 8), (5, 300, 64, 16)])
def test_blocks_partition_the_raster(height, width, size, halo):
    seen = np.zeros((height, width), np.int32)
    for block in plan_blocks(height, width, size, halo):
        c, r = int(block.core.col_off), int(block.core.row_off)
        seen[r : r + int(block.core.height), c : c + int(block.core.width)] += 1
        assert block.read.row_off >= 0 and block.read.col_off >= 0
        assert block.read.row_off + block.read.height <= height
        assert block.read.col_off + block.read.width <= width
    assert (seen == 1).all()


def test_model_scale():
    assert model_scale(0.5, 0.5) == 1.0
    assert model_scale(0.505, 0.5) == 1.0
    assert model_scale(0.3, 0.5) == pytest.approx(0.6)
    assert model_scale(None, 0.5) == 1.0


def test_streamed_blocks_reassemble_exactly(tmp_path):
    data = road_image(130, 170)
    path = write_geotiff(tmp_path / "a.tif", data)
    cfg = InferenceConfig(stream_window=48, stream_halo=8)
    fractions: list[float] = []
    with open_raster(path) as src:
        prob = predict_probability(src, PixelPredictor(), cfg, tmp_path, fractions.append)
        out = prob[0:130, 0:170]
    expected = np.rint(data[0] / 255.0 * 255) / 255.0
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)


def test_finer_input_is_resampled_to_model_gsd_and_back(tmp_path):
    # A smooth ramp at 0.25 m: the model sees half the pixels; the output is on the input grid.
    ramp = np.tile(np.linspace(0, 255, 200, dtype=np.float32), (3, 160, 1)).astype(np.uint8)
    transform = Affine(0.25, 0, 500000.0, 0, -0.25, 4649776.0)
    path = write_geotiff(tmp_path / "fine.tif", ramp, transform=transform)
    model = PixelPredictor(gsd_m=0.5)
    with open_raster(path) as src:
        prob = predict_probability(src, model, InferenceConfig(), tmp_path)
        assert prob.shape == (160, 200)
        assert prob.transform == src.transform
    # 80 x 100 model pixels plus the reflected halo (128 model px each side).
    assert model.shapes[0][1:] == (80 + 256, 100 + 256)
    np.testing.assert_allclose(prob[0:160, 0:200], ramp[0] / 255.0, atol=0.02)


def test_alpha_area_gets_zero_probability(tmp_path):
    rgb = np.full((3, 64, 64), 250, np.uint8)
    alpha = np.full((1, 64, 64), 255, np.uint8)
    alpha[0, 40:, :] = 0
    interp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    path = write_geotiff(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), colorinterp=interp)
    with open_raster(path) as src:
        prob = predict_probability(src, PixelPredictor(), InferenceConfig(), tmp_path)
    assert (prob[40:64, 0:64] == 0).all()
    assert (prob[0:40, 0:64] > 0.9).all()


def test_utm_roads_lie_inside_raster_in_lon_lat_order(tmp_path):
    data = road_image(256, 320)
    path = write_geotiff(tmp_path / "utm.tif", data, crs="EPSG:32633")
    with open_raster(path) as src:
        prob = predict_probability(src, PixelPredictor(), InferenceConfig(), tmp_path)
        roads = extract_roads(prob, VectorizeConfig(threshold=0.6))
        from rasterio.warp import transform_bounds

        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    assert roads["type"] == "FeatureCollection"
    assert len(roads["features"]) >= 3  # a cross: one junction, four arms (some may be merged)
    footprint = box(west, south, east, north).buffer(1e-6)
    for feature in roads["features"]:
        line = shape(feature["geometry"])
        assert footprint.contains(line)
        lon, lat = line.coords[0]
        assert 14.9 < lon < 15.1 and 41.9 < lat < 42.1  # UTM 33N at 500 km E, ~4650 km N


def test_tiny_model_end_to_end(tmp_path, tiny_checkpoint):
    path = write_geotiff(tmp_path / "utm.tif", road_image(96, 128))
    cfg = InferenceConfig(patch_size=64, stride=32, tta="flip4", device="cpu", stream_halo=32)
    predictor = Predictor(load_checkpoint(tiny_checkpoint, "cpu"), cfg)
    with open_raster(path) as src:
        prob = predict_probability(src, predictor, cfg, tmp_path)
        values = prob[0:96, 0:128]
        roads = extract_roads(prob, VectorizeConfig())
    assert values.shape == (96, 128) and 0.0 <= values.min() <= values.max() <= 1.0
    assert roads["type"] == "FeatureCollection"
