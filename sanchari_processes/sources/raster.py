"""Windowed reads from any raster GDAL opens: GeoTIFF/COG, or a plain JPEG/PNG.

A :class:`RasterSource` picks the model's bands (RGB by colour interpretation, alpha excluded),
knows which pixels hold data (nodata, alpha and internal masks via GDAL's mask flags) and reads
windows resampled to the model's ground sample distance, so callers never load a whole raster.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import array_bounds
from rasterio.windows import Window

from sanchari_processes.chip import GeoChip, pixel_sizes_m
from sanchari_processes.errors import InvalidInputError, SourceUnavailableError

_RGB = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
#: Longest side of the decimated read used to find a stretch for non-8-bit imagery.
_STATS_SIDE = 1024


@dataclass(frozen=True)
class BandStretch:
    """Linear map of raw band values to 0..255 (identity for 8-bit imagery)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def apply(self, data: np.ndarray) -> np.ndarray:
        lo = np.asarray(self.low, np.float32)[:, None, None]
        hi = np.asarray(self.high, np.float32)[:, None, None]
        scaled = (data.astype(np.float32) - lo) * (255.0 / np.maximum(hi - lo, 1e-6))
        return np.clip(scaled, 0.0, 255.0)


class RasterSource:
    """An open raster with the bands, mask and scaling the model needs (state: the open file)."""

    def __init__(
        self,
        dataset: rasterio.io.DatasetReader,
        bands: tuple[int, ...],
        *,
        gsd_m: float | None = None,
        spec: SourceSpec | None = None,
    ) -> None:
        self._ds = dataset
        self.bands = bands
        #: How to open this raster again elsewhere (``None``: not opened from a path).
        self.spec = spec
        self.path = Path(dataset.name)
        self.crs: CRS | None = CRS.from_user_input(dataset.crs) if dataset.crs else None
        self.transform: Affine = dataset.transform
        self.height: int = dataset.height
        self.width: int = dataset.width
        if self.crs is None:
            # A plain image: pixel coordinates, identity transform (not GDAL's y-flip default).
            self.transform = Affine.identity()
        #: Ground metres per pixel along x and y (a user's ``gsd_m`` wins; None when unknown).
        self.pixel_sizes_m: tuple[float, float] | None = (
            (gsd_m, gsd_m)
            if gsd_m is not None
            else pixel_sizes_m(self.transform, self.crs, (self.height, self.width))
            if self.crs
            else None
        )
        self.gsd_m: float | None = (
            sum(self.pixel_sizes_m) / 2.0 if self.pixel_sizes_m is not None else None
        )
        self.stretch = self._find_stretch()

    # -- context management -------------------------------------------------------------------
    def close(self) -> None:
        self._ds.close()

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the raster's CRS (pixels when it has none)."""
        return array_bounds(self.height, self.width, self.transform)

    # -- reads --------------------------------------------------------------------------------
    def read(self, window: Window, out_shape: tuple[int, int] | None = None) -> GeoChip:
        """Read ``window`` as a chip of 0..255 float32 pixels, resampled to ``out_shape``.

        Resampling uses bilinear interpolation for pixels and nearest for the validity mask; the
        chip's transform is the window's, scaled to the output grid.
        """
        height, width = out_shape or (int(window.height), int(window.width))
        try:
            data = self._ds.read(
                self.bands,
                window=window,
                out_shape=(len(self.bands), height, width),
                resampling=Resampling.bilinear,
            )
            masks = self._ds.read_masks(
                self.bands,
                window=window,
                out_shape=(len(self.bands), height, width),
                resampling=Resampling.nearest,
            )
        except RasterioIOError as exc:
            message = f"could not read {self.path.name}: {_first_line(exc)}"
            raise SourceUnavailableError(message) from None
        transform = self.window_transform(window) @ Affine.scale(
            window.width / width, window.height / height
        )
        return GeoChip(
            data=self.stretch.apply(data),
            transform=transform,
            crs=self.crs,
            valid=np.all(masks > 0, axis=0),
        )

    def read_valid(self, window: Window) -> np.ndarray:
        """Where the selected bands hold data, at full resolution."""
        masks = self._ds.read_masks(self.bands, window=window)
        return np.all(masks > 0, axis=0)

    def window_transform(self, window: Window) -> Affine:
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def _find_stretch(self) -> BandStretch:
        """8-bit imagery is used as is; deeper data is stretched 2–98 % per band.

        The percentiles come from one decimated read (overviews when the file has them), so
        every window of a raster is scaled the same way and no seams appear between windows.
        """
        dtypes = {self._ds.dtypes[b - 1] for b in self.bands}
        if dtypes == {"uint8"}:
            n = len(self.bands)
            return BandStretch(low=(0.0,) * n, high=(255.0,) * n)
        scale = max(self.height, self.width) / _STATS_SIDE
        shape = (
            max(1, round(self.height / max(scale, 1))),
            max(1, round(self.width / max(scale, 1))),
        )
        data = self._ds.read(self.bands, out_shape=(len(self.bands), *shape), masked=True)
        lows, highs = [], []
        for band in data:
            values = band.compressed()
            if values.size == 0:
                lows.append(0.0)
                highs.append(1.0)
                continue
            lo, hi = np.percentile(values, [2.0, 98.0])
            lows.append(float(lo))
            highs.append(float(hi if hi > lo else lo + 1.0))
        return BandStretch(low=tuple(lows), high=tuple(highs))


def select_bands(
    dataset: rasterio.io.DatasetReader, n_bands: int, bands: Sequence[int] | None = None
) -> tuple[int, ...]:
    """Which 1-based bands feed the model.

    Explicit ``bands`` win; otherwise bands labelled red/green/blue, then the first non-alpha
    bands; a single grey band is repeated so panchromatic imagery still runs.
    """
    if bands:
        bad = [b for b in bands if not 1 <= b <= dataset.count]
        if bad:
            raise InvalidInputError(
                f"band {bad[0]} does not exist: the raster has {dataset.count} band(s)"
            )
        if len(bands) != n_bands:
            raise InvalidInputError(f"the model needs {n_bands} bands, {len(bands)} were given")
        return tuple(bands)
    interp = list(dataset.colorinterp)
    if n_bands == 3 and all(ci in interp for ci in _RGB):
        return tuple(interp.index(ci) + 1 for ci in _RGB)
    data_bands = [i + 1 for i, ci in enumerate(interp) if ci != ColorInterp.alpha]
    if len(data_bands) >= n_bands:
        return tuple(data_bands[:n_bands])
    if len(data_bands) == 1:
        return (data_bands[0],) * n_bands
    raise InvalidInputError(
        f"the raster has {len(data_bands)} data band(s); the model needs {n_bands}"
    )


@dataclass(frozen=True)
class SourceSpec:
    """How to open a raster again, e.g. on a cluster worker that reads its own windows.

    What :func:`open_raster` was given, with the path made absolute (workers see the input at
    the same path, on a shared filesystem) and the file's ``(mtime_ns, size)``, so a replaced
    file is not served from a worker's cache of open rasters.
    """

    location: str
    n_bands: int
    bands: tuple[int, ...] | None = None
    gsd_m: float | None = None
    version: tuple[int, int] = (0, 0)

    def open(self) -> RasterSource:
        return open_raster(self.location, self.n_bands, bands=self.bands, gsd_m=self.gsd_m)


def open_raster(
    path: str | Path,
    n_bands: int = 3,
    *,
    bands: Sequence[int] | None = None,
    gsd_m: float | None = None,
) -> RasterSource:
    """Open ``path`` for windowed reads, or raise a one-line :class:`InvalidInputError`."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"input not found: {path}")
    if path.is_dir():
        raise InvalidInputError(f"input is a directory, not a raster: {path}")
    if gsd_m is not None and not (math.isfinite(gsd_m) and gsd_m > 0):
        raise InvalidInputError("the ground sample distance must be a positive number of metres")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except RasterioIOError as exc:
        raise InvalidInputError(f"cannot read {path} as a raster: {_first_line(exc)}") from None
    stat = path.stat()
    spec = SourceSpec(
        str(path.absolute()),
        n_bands,
        None if bands is None else tuple(bands),
        gsd_m,
        (stat.st_mtime_ns, stat.st_size),
    )
    try:
        chosen = select_bands(dataset, n_bands, bands)
        return RasterSource(dataset, chosen, gsd_m=gsd_m, spec=spec)
    except Exception:
        dataset.close()
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
