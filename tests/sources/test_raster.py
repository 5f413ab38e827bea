"""Raster sources: band choice, validity masks, stretch, windowed resampled reads."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.sources import open_raster
from tests.synthetic import road_image, write_geotiff


def test_utm_rgb_reads_window_with_georeferencing(tmp_path):
    data = road_image(200, 300)
    path = write_geotiff(tmp_path / "utm.tif", data)
    with open_raster(path) as src:
        assert src.bands == (1, 2, 3)
        # ground metres: UTM's scale factor on the central meridian is 0.9996
        assert src.gsd_m == pytest.approx(0.5 / 0.9996, rel=1e-5)
        chip = src.read(Window(10, 20, 100, 50))
    assert chip.data.shape == (3, 50, 100)
    np.testing.assert_array_equal(chip.data, data[:, 20:70, 10:110].astype(np.float32))
    assert chip.transform == Affine(0.5, 0, 500005.0, 0, -0.5, 4649766.0)
    assert chip.valid.all()


def test_resampled_read_scales_transform(tmp_path):
    path = write_geotiff(tmp_path / "utm.tif", road_image(200, 200))
    with open_raster(path) as src:
        chip = src.read(Window(0, 0, 200, 200), out_shape=(100, 100))
    assert chip.data.shape == (3, 100, 100)
    assert chip.transform.a == pytest.approx(1.0)
    assert chip.gsd_m() == pytest.approx(1.0 / 0.9996, rel=1e-5)


def test_geographic_gsd_in_metres(tmp_path):
    transform = Affine(3e-6, 0, 2.35, 0, -3e-6, 48.85)
    path = write_geotiff(
        tmp_path / "ll.tif", road_image(64, 64), crs="EPSG:4326", transform=transform
    )
    with open_raster(path) as src:
        # 3e-6 degrees is ~0.33 m north-south and ~0.22 m east-west at Paris.
        assert 0.2 < src.gsd_m < 0.35


def test_rgba_excludes_alpha_and_masks_transparent(tmp_path):
    rgb = road_image(64, 64)
    alpha = np.full((1, 64, 64), 255, np.uint8)
    alpha[0, :, :16] = 0
    interp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    path = write_geotiff(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), colorinterp=interp)
    with open_raster(path) as src:
        assert src.bands == (1, 2, 3)
        chip = src.read(Window(0, 0, 64, 64))
    assert not chip.valid[:, :16].any()
    assert chip.valid[:, 16:].all()


def test_bgr_order_follows_colour_interpretation(tmp_path):
    interp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red]
    path = write_geotiff(tmp_path / "bgr.tif", road_image(16, 16), colorinterp=interp)
    with open_raster(path) as src:
        assert src.bands == (3, 2, 1)


def test_nodata_masked(tmp_path):
    data = road_image(32, 32)
    data[:, :8, :] = 0
    path = write_geotiff(tmp_path / "nd.tif", data, nodata=0)
    with open_raster(path) as src:
        chip = src.read(Window(0, 0, 32, 32))
    assert not chip.valid[:8].any() and chip.valid[8:].all()


def test_uint16_stretched_to_8bit(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(1000, 3000, (4, 40, 40)).astype(np.uint16)
    path = write_geotiff(tmp_path / "u16.tif", data)
    with open_raster(path) as src:
        assert src.bands == (1, 2, 3)
        chip = src.read(Window(0, 0, 40, 40))
    assert chip.data.min() >= 0 and chip.data.max() <= 255
    assert chip.data.max() == 255 and chip.data.min() == 0


def test_single_band_repeated(tmp_path):
    path = write_geotiff(tmp_path / "grey.tif", road_image(16, 16)[:1])
    with open_raster(path) as src:
        assert src.bands == (1, 1, 1)


def test_explicit_bands_validated(tmp_path):
    path = write_geotiff(tmp_path / "rgb.tif", road_image(16, 16))
    with pytest.raises(InvalidInputError, match="band 5 does not exist"):
        open_raster(path, bands=[1, 2, 5])
    with pytest.raises(InvalidInputError, match="needs 3 bands"):
        open_raster(path, bands=[1, 2])


def test_plain_png_has_no_crs(tmp_path):
    from PIL import Image

    Image.fromarray(road_image(40, 50).transpose(1, 2, 0)).save(tmp_path / "a.png")
    with open_raster(tmp_path / "a.png", gsd_m=0.5) as src:
        assert not src.is_georeferenced
        assert src.transform == Affine.identity()
        assert src.gsd_m == 0.5


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.tif", None, "input not found"),
        ("bad.tif", b"not a tiff at all", "cannot read"),
    ],
)
def test_bad_inputs_raise_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message) as info:
        open_raster(path)
    assert "\n" not in str(info.value)


def test_directory_is_not_a_raster(tmp_path):
    with pytest.raises(InvalidInputError, match="directory"):
        open_raster(tmp_path)
