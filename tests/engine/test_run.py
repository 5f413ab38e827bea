"""The streaming engine: block plans, exact reassembly, GSD resampling, masks, end to end."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.enums import ColorInterp
from shapely.geometry import box, shape

from sanchari_processes.config import InferenceConfig, VectorizeConfig
from sanchari_processes.engine.build import torch_predictor
from sanchari_processes.engine.run import (
    GridReader,
    extract_roads,
    model_scale,
    model_scales,
    predict_probability,
)
from sanchari_processes.inference import Architecture, ModelMetadata, Predictor, load_checkpoint
from sanchari_processes.inference.sliding import count_patches
from sanchari_processes.sources import open_raster
from tests.synthetic import road_image, write_geotiff


class PixelRunner:
    """A stand-in network whose output is a known per-pixel function (red / 255).

    Any seam, misplaced block, missing context or georeferencing slip in the streaming shows up
    as a difference from that function. It counts the patches it is given.
    """

    name = "pixel"
    device = "cpu"
    batch_views = False

    def __init__(self) -> None:
        self.patches = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.patches += len(batch)
        return batch[:, 0] * 0.5 + 0.5  # undo the (x - 0.5) / 0.5 normalisation of red


class PixelPredictor(Predictor):
    """A real :class:`Predictor` on :class:`PixelRunner`, recording the grids it streams."""

    def __init__(self, gsd_m: float = 0.5, **config) -> None:
        meta = ModelMetadata(
            model_id="pixel",
            architecture=Architecture(
                encoder_name="none", encoder_depth=3, decoder_channels=(4,) * 3
            ),
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            gsd_m=gsd_m,
        )
        super().__init__(PixelRunner(), meta, InferenceConfig(**{**_SMALL, **config}))
        self.grids: list[tuple[int, int]] = []

    def predict_stream(self, shape, read, write, progress=None):
        self.grids.append(shape)
        return super().predict_stream(shape, read, write, progress)


_SMALL = {"patch_size": 64, "stride": 48, "tta": "none"}  # a per-pixel runner: views change nothing


def test_model_scale():
    assert model_scale(0.5, 0.5) == 1.0
    assert model_scale(0.505, 0.5) == 1.0
    assert model_scale(0.3, 0.5) == pytest.approx(0.6)
    assert model_scale(None, 0.5) == 1.0


def test_streamed_blocks_reassemble_exactly_with_each_patch_once(tmp_path):
    data = road_image(130, 170)
    path = write_geotiff(tmp_path / "a.tif", data)
    model = PixelPredictor(stream_window=48)  # one stride per block: the most seams
    fractions: list[float] = []
    with open_raster(path) as src:
        prob = predict_probability(src, model, tmp_path, fractions.append)
        out = prob[0:130, 0:170]
    expected = np.rint(data[0] / 255.0 * 255) / 255.0
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    # The block halo and the patch overlap are one: no patch is predicted twice.
    assert model.runner.patches == count_patches((130, 170), 64, 48, margin=0) == 12


def test_finer_input_is_resampled_to_model_gsd_and_back(tmp_path):
    # A smooth ramp at 0.25 m: the model sees half the pixels; the output is on the input grid.
    ramp = np.tile(np.linspace(0, 255, 200, dtype=np.float32), (3, 160, 1)).astype(np.uint8)
    transform = Affine(0.25, 0, 500000.0, 0, -0.25, 4649776.0)
    path = write_geotiff(tmp_path / "fine.tif", ramp, transform=transform)
    model = PixelPredictor(gsd_m=0.5)
    with open_raster(path) as src:
        prob = predict_probability(src, model, tmp_path)
        assert prob.shape == (160, 200)
        assert prob.transform == src.transform
    assert model.grids == [(80, 100)]  # the model's grid: half the pixels along each axis
    np.testing.assert_allclose(prob[0:160, 0:200], ramp[0] / 255.0, atol=0.02)


def test_alpha_area_gets_zero_probability(tmp_path):
    rgb = np.full((3, 64, 64), 250, np.uint8)
    alpha = np.full((1, 64, 64), 255, np.uint8)
    alpha[0, 40:, :] = 0
    interp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    path = write_geotiff(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), colorinterp=interp)
    with open_raster(path) as src:
        prob = predict_probability(src, PixelPredictor(), tmp_path)
    assert (prob[40:64, 0:64] == 0).all()
    # nodata_margin_m (3 m = 6 px at 0.5 m) is dropped too: the model's view there is filled in
    assert (prob[34:40, 0:64] == 0).all()
    assert (prob[0:34, 0:64] > 0.9).all()


def test_utm_roads_lie_inside_raster_in_lon_lat_order(tmp_path):
    data = road_image(256, 320)
    path = write_geotiff(tmp_path / "utm.tif", data, crs="EPSG:32633")
    with open_raster(path) as src:
        prob = predict_probability(src, PixelPredictor(), tmp_path)
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
    cfg = InferenceConfig(patch_size=64, stride=32, tta="flip4", device="cpu", stream_window=32)
    predictor = torch_predictor(load_checkpoint(tiny_checkpoint, "cpu"), cfg)
    whole = predictor.predict(np.ascontiguousarray(road_image(96, 128)))
    with open_raster(path) as src:
        prob = predict_probability(src, predictor, tmp_path)
        values = prob[0:96, 0:128]
        roads = extract_roads(prob, VectorizeConfig())
    assert values.shape == (96, 128) and 0.0 <= values.min() <= values.max() <= 1.0
    np.testing.assert_allclose(values, np.rint(whole * 255) / 255, atol=1.5 / 255)
    assert roads["type"] == "FeatureCollection"


def _warp(src_path: Path, dst_path: Path, crs: str) -> Path:
    """``src_path`` reprojected to ``crs`` at the same ground resolution (nearest: no blur),
    with an alpha band over the corners outside the scene, as ``gdalwarp -dstalpha`` writes
    (without one, those black corners are image to any reader, and the model saw edges there)."""
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, crs, src.width, src.height, *src.bounds
        )
        profile = src.profile | {
            "crs": crs,
            "transform": transform,
            "width": width,
            "height": height,
            "count": src.count + 1,
        }
        inside = np.zeros((height, width), np.uint8)
        reproject(
            np.full((src.height, src.width), 255, np.uint8),
            inside,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=transform,
            dst_crs=crs,
            resampling=Resampling.nearest,
        )
        with rasterio.open(dst_path, "w", **profile) as dst:
            for band in range(1, src.count + 1):
                reproject(
                    rasterio.band(src, band),
                    rasterio.band(dst, band),
                    dst_transform=transform,
                    dst_crs=crs,
                    resampling=Resampling.nearest,
                )
            dst.write(inside, src.count + 1)
            dst.colorinterp = [*src.colorinterp, ColorInterp.alpha]
    return dst_path


def _within(a: list, b: list, metres: float) -> float:
    """Share of the length of lines ``a`` within ``metres`` of lines ``b`` (both in UTM)."""
    from shapely.ops import unary_union

    near = unary_union(b).buffer(metres)
    total = sum(line.length for line in a)
    return sum(line.intersection(near).length for line in a) / total if total else 1.0


def test_same_scene_in_three_crss_gives_the_same_roads(tmp_path: Path) -> None:
    """EPSG:3857 was measured in Mercator units (1.52× too coarse at 49° N), and this
    EPSG:4326 scene's pixels are 0.2 m wide and 0.3 m tall: both now reach the model as square
    pixels at its own resolution, so all three give the same centrelines where all three have
    data (each warped copy's corners outside the scene are no-data, and roads stop short of
    no-data by design, so lines are compared inside the scene, 5 m in from its edge). In float32:
    the question is the geometry, and the default int8 network's own wobble on these 9 lines
    (0.945 of the reference within 3 m of the Mercator copy's, 0.961 in float32) is not."""
    import json

    import rasterio
    from pyproj import Transformer
    from shapely.ops import transform as reproject_geometry

    from sanchari_processes.cli import main

    scene = Path(__file__).resolve().parents[2] / "geotiffs" / "paris_img1447.tif"  # shipped
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True).transform
    with rasterio.open(scene) as src:
        footprint = box(*src.bounds).segmentize(1e-5)
    interior = reproject_geometry(to_utm, footprint).buffer(-5.0)
    lines = {}
    for crs in ("EPSG:4326", "EPSG:32631", "EPSG:3857"):
        path = scene if crs == "EPSG:4326" else _warp(scene, tmp_path / f"{crs[5:]}.tif", crs)
        out = tmp_path / f"{crs[5:]}.geojson"
        args = ["predict", str(path), "-o", str(out), "--tta", "none", "--precision", "fp32"]
        assert main(args) == 0
        features = json.loads(out.read_text())["features"]
        lines[crs] = [
            reproject_geometry(to_utm, shape(f["geometry"])).intersection(interior)
            for f in features
        ]
    reference = lines["EPSG:4326"]
    assert sum(line.length for line in reference) > 200.0
    for crs in ("EPSG:32631", "EPSG:3857"):
        assert _within(lines[crs], reference, 3.0) >= 0.95, crs
        assert _within(reference, lines[crs], 3.0) >= 0.95, crs


def test_model_scales_per_axis():
    assert model_scales(None, 0.5) == (1.0, 1.0)
    assert model_scales((0.2, 0.3), 0.5) == pytest.approx((0.6, 0.4))  # (rows, columns)
    assert model_scales((0.502, 0.5), 0.5) == (1.0, 1.0)


def test_anisotropic_pixels_reach_the_model_square(tmp_path):
    # 0.25 m wide, 0.5 m tall pixels: the model (0.5 m) must see half as many columns.
    data = road_image(100, 200)
    path = write_geotiff(
        tmp_path / "aniso.tif", data, transform=Affine(0.25, 0, 500000.0, 0, -0.5, 4649776.0)
    )
    model = PixelPredictor(gsd_m=0.5)
    with open_raster(path) as src:
        prob = predict_probability(src, model, tmp_path)
    assert prob.shape == (100, 200)
    assert model.grids == [(100, 100)]


def _rgba_half_transparent(tmp_path: Path, rgb: np.ndarray) -> tuple[Path, float]:
    """``rgb`` as an RGBA GeoTIFF whose left half is transparent (and black); returns the path
    and the x of the alpha edge in the raster's CRS."""
    _, height, width = rgb.shape
    rgb = rgb.copy()
    rgb[:, :, : width // 2] = 0
    alpha = np.full((1, height, width), 255, np.uint8)
    alpha[0, :, : width // 2] = 0
    interp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    path = write_geotiff(tmp_path / "half.tif", np.concatenate([rgb, alpha]), colorinterp=interp)
    x_edge = (Affine(0.5, 0, 500000.0, 0, -0.5, 4649776.0) * (width // 2, 0))[0]
    return path, x_edge


def _false_road_along_the_edge(tmp_path: Path, rgb: np.ndarray) -> float:
    """Metres of centreline that run along the alpha edge of ``rgb`` with its left half made
    transparent, and that the same image without transparency does not have (within 4 m):
    roads that really cross or follow the edge do not count, lines the edge made do."""
    import json

    from pyproj import Transformer
    from shapely.geometry import LineString
    from shapely.ops import unary_union

    from sanchari_processes.cli import main

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform
    half, x_edge = _rgba_half_transparent(tmp_path, rgb)
    full = write_geotiff(tmp_path / "full.tif", rgb)
    pieces = {}
    for name, path in (("half", half), ("full", full)):
        out = tmp_path / f"{name}.geojson"
        assert main(["predict", str(path), "-o", str(out), "--tta", "none", "--no-progress"]) == 0
        pieces[name] = []
        for feature in json.loads(out.read_text())["features"]:
            xs, ys = to_utm(*np.asarray(feature["geometry"]["coordinates"]).T)
            pieces[name] += [LineString(p) for p in itertools.pairwise(np.column_stack([xs, ys]))]
    reference = unary_union(pieces["full"]).buffer(4.0)
    false = 0.0
    for piece in pieces["half"]:
        (ax, ay), (bx, by) = piece.coords
        # a piece within 8 m of the edge that runs along it (within ~30° of vertical)
        if max(abs(ax - x_edge), abs(bx - x_edge)) < 8.0 and abs(by - ay) > 1.7 * abs(bx - ax):
            false += piece.difference(reference).length
    return false


def test_no_false_road_along_a_transparent_edge(tmp_path: Path) -> None:
    """A real image (a CIL tile) with its left half transparent: no centreline may run along
    the alpha edge (one did, ~125 m: a constant fill is a sharp step the model reads as a road
    edge, and a smooth grey fill reads as asphalt to a model that never saw it)."""
    import cv2

    from tests.vectorize.test_paris import SHARED

    tile = SHARED / "data" / "roads" / "cil" / "images" / "satimage_2.jpg"
    if not tile.exists():
        pytest.skip(f"{tile} not found (shared data is optional)")
    image = cv2.resize(cv2.imread(str(tile))[:, :, ::-1], (512, 512), cv2.INTER_AREA)
    false = _false_road_along_the_edge(tmp_path, np.ascontiguousarray(image.transpose(2, 0, 1)))
    assert false < 10.0, f"{false:.1f} m of false centreline along the alpha edge"


def test_no_false_road_along_the_transparent_edge_of_a_synthetic_scene(tmp_path: Path) -> None:
    """The same on a synthetic scene (roads on a textured ground), with the shipped model."""
    rgb = road_image(512, 512, seed=3)
    false = _false_road_along_the_edge(tmp_path, rgb)
    assert false < 10.0, f"{false:.1f} m of false centreline along the alpha edge"


@pytest.mark.parametrize("gsd_m", [0.5, 0.35])  # the model's grid, and resampled to it
def test_grid_reader_travels_without_the_open_file_and_reads_the_same(
    tmp_path: Path, gsd_m: float
) -> None:
    transform = Affine(gsd_m, 0, 500000.0, 0, -gsd_m, 4649776.0)
    path = write_geotiff(tmp_path / "a.tif", road_image(90, 110), transform=transform)
    with open_raster(path) as source:
        grid = (round(90 * gsd_m / 0.5), round(110 * gsd_m / 0.5))
        reader = GridReader(source, grid, (90 / grid[0], 110 / grid[1]))
        sent = pickle.dumps(reader)
        here = reader(slice(10, 40), slice(5, 60))
    assert len(sent) < 2000  # a description of the raster, not its pixels
    there = pickle.loads(sent)(slice(10, 40), slice(5, 60))  # opens the file itself
    np.testing.assert_array_equal(there[0], here[0])
    np.testing.assert_array_equal(there[1], here[1])
