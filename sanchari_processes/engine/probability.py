"""A road-probability raster on the input's grid, kept on disk so memory stays bounded.

Probabilities are stored as uint8 (0..255, a step of 1/255 — far finer than any threshold a user
sets) in a memory-mapped scratch file; slicing returns float32 in 0..1, which is the interface
the vectorizer reads tile by tile.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

from sanchari_processes.errors import InvalidInputError


@dataclass
class ProbabilityMap:
    """Quantised probability (``uint8`` 0..255) with its georeferencing."""

    array: np.ndarray
    transform: Affine
    crs: CRS | None
    gsd_m: float

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.array.shape[0]), int(self.array.shape[1]))

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        return self.array[key].astype(np.float32) / 255.0

    @classmethod
    def scratch(
        cls, shape: tuple[int, int], transform: Affine, crs: CRS | None, gsd_m: float, workdir: Path
    ) -> ProbabilityMap:
        """An all-zero map backed by a file in ``workdir`` (removed with the directory)."""
        fd, name = tempfile.mkstemp(prefix="prob-", suffix=".u8", dir=workdir)
        with open(fd, "wb") as fh:
            fh.truncate(shape[0] * shape[1])
        array = np.memmap(name, dtype=np.uint8, mode="r+", shape=shape)
        return cls(array=array, transform=transform, crs=crs, gsd_m=gsd_m)

    def write(self, row: int, col: int, prob: np.ndarray) -> None:
        """Store float probabilities at ``(row, col)``."""
        h, w = prob.shape
        self.array[row : row + h, col : col + w] = np.rint(np.clip(prob, 0.0, 1.0) * 255.0)

    def iter_blocks(self, size: int = 2048) -> Iterator[tuple[Window, np.ndarray]]:
        """Row-major blocks ``(window, uint8 array)`` for streaming writers."""
        rows, cols = self.shape
        for r in range(0, rows, size):
            for c in range(0, cols, size):
                win = Window(c, r, min(size, cols - c), min(size, rows - r))
                yield win, np.asarray(self.array[r : r + win.height, c : c + win.width])

    def save_probability(self, path: Path) -> None:
        """Write a float32 0..1 GeoTIFF (``--prob-out``), block by block."""
        with _open_out(path, self, "float32") as dst:
            for win, block in self.iter_blocks():
                dst.write((block.astype(np.float32) / 255.0)[None], window=win)

    def save_mask(self, path: Path, threshold: float) -> None:
        """Write the binary road mask (0/255 uint8 GeoTIFF, ``--mask-out``)."""
        cut = threshold * 255.0
        with _open_out(path, self, "uint8") as dst:
            for win, block in self.iter_blocks():
                dst.write(np.where(block > cut, 255, 0).astype(np.uint8)[None], window=win)


def _open_out(path: Path, prob: ProbabilityMap, dtype: str) -> rasterio.io.DatasetWriter:
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise InvalidInputError(f"output directory does not exist: {path.parent}")
    rows, cols = prob.shape
    profile = {
        "driver": "GTiff",
        "height": rows,
        "width": cols,
        "count": 1,
        "dtype": dtype,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if prob.crs is not None:
        profile.update(crs=prob.crs, transform=prob.transform)
    return rasterio.open(path, "w", **profile)


class RasterBandArray:
    """Band 1 of an open raster as a read-on-slice array of 0..1 floats (for ``vectorize``).

    Float rasters are taken as probabilities and must lie in 0..1; integer rasters are binary or
    8-bit (0/1 or 0/255) masks, scaled by their maximum. Nodata pixels read as 0.
    """

    def __init__(self, dataset: rasterio.io.DatasetReader) -> None:
        self._ds = dataset
        self.shape = (dataset.height, dataset.width)
        self.scale = self._find_scale()

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = key
        window = Window.from_slices(rows, cols, height=self.shape[0], width=self.shape[1])
        band = self._ds.read(1, window=window, masked=True)
        return (band.filled(0).astype(np.float32) * self.scale).clip(0.0, 1.0)

    def _find_scale(self) -> float:
        is_float = np.dtype(self._ds.dtypes[0]).kind == "f"
        top = 0.0
        for _, window in self._ds.block_windows(1):
            band = self._ds.read(1, window=window, masked=True)
            if band.count() == 0:
                continue
            lo, hi = float(band.min()), float(band.max())
            if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0:
                raise InvalidInputError(
                    "road raster values must be probabilities in 0..1 or a 0/1 or 0/255 mask"
                )
            top = max(top, hi)
        if is_float:
            if top > 1.0 + 1e-6:
                raise InvalidInputError(
                    f"float road raster has values up to {top:g}; probabilities must lie in 0..1"
                )
            return 1.0
        if top <= 1:
            return 1.0
        if top <= 255:
            return 1.0 / 255.0
        raise InvalidInputError(
            f"integer road raster has values up to {top:g}; expected a 0/1 or 0/255 mask"
        )
