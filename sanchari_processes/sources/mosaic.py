"""Reading a catalogue window: the plan of one request and the GeoTIFF mosaicked from it.

A :class:`WindowPlan` names the files to read (best first) and the output grid; materialising
it mosaics those files on that grid (``rasterio.merge`` over ``WarpedVRT``s for files in other
CRSs), so a window crossing file edges still sees all its imagery. The index that makes the
plans is :mod:`sanchari_processes.sources.catalogue`.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.merge import merge
from rasterio.vrt import WarpedVRT

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.sources.base import Imagery, Progress

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowPlan:
    """What to read for one request: source files (best first) and the output grid.

    ``whole_file`` plans read one catalogue file as it is (no window is cut).
    """

    sources: tuple[Path, ...]
    crs_wkt: str
    transform: Affine
    width: int
    height: int
    bounds_wgs84: tuple[float, float, float, float]
    whole_file: bool = False
    #: The catalogue folder (file names in provenance are relative to it).
    root: Path | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    # -- the SourcePlan interface ----------------------------------------------------------
    needs_network = False

    def complete(self) -> WindowPlan:
        return self

    def materialise(self, workdir: Path, progress: Progress) -> Imagery:
        window = self.describe(self.root)
        return Imagery(materialise(self, workdir), ", ".join(window["files"]), {"window": window})

    def describe(self, root: Path | None = None) -> dict:
        """A JSON-able summary for provenance (file names relative to the catalogue)."""
        names = [_relative_name(p, root or self.root) for p in self.sources]
        return {
            "files": names,
            "crs": CRS.from_wkt(self.crs_wkt).to_string(),
            "bounds": list(grid_bounds(self.transform, self.width, self.height)),
            "bounds_wgs84": list(self.bounds_wgs84),
            "width": self.width,
            "height": self.height,
        }


def materialise(plan: WindowPlan, workdir: Path) -> Path:
    """A GeoTIFF holding the plan's window (the file itself for whole-file plans).

    The window is mosaicked from every source on the plan's grid: files in another CRS are
    warped on the fly (``WarpedVRT``); where files overlap, the best (first) one wins.
    """
    if plan.whole_file:
        return plan.sources[0]
    target = CRS.from_wkt(plan.crs_wkt)
    dst = Path(workdir) / "window.tif"
    left, bottom, right, top = grid_bounds(plan.transform, plan.width, plan.height)
    res = (abs(plan.transform.a), abs(plan.transform.e))
    try:
        with ExitStack() as stack:
            datasets = []
            for path in plan.sources:
                ds = stack.enter_context(rasterio.open(path))
                if CRS.from_user_input(ds.crs) != target:
                    ds = stack.enter_context(
                        WarpedVRT(ds, crs=target.to_wkt(), resampling=Resampling.bilinear)
                    )
                datasets.append(ds)
            first = datasets[0]
            kwds: dict[str, object] = {"compress": "deflate"}
            if plan.width >= 256 and plan.height >= 256:
                kwds.update(tiled=True, blockxsize=256, blockysize=256)
            merge(
                datasets,
                bounds=(left, bottom, right, top),
                res=res,
                nodata=first.nodata,
                resampling=Resampling.bilinear,
                dst_path=dst,
                dst_kwds=kwds,
            )
            interp = first.colorinterp
        with rasterio.open(dst, "r+") as out:
            if len(interp) == out.count:
                out.colorinterp = interp
    except RasterioIOError as exc:
        LOGGER.warning("mosaic of %s failed: %s", [p.name for p in plan.sources], exc)
        raise InvalidInputError("the catalogue imagery for this window could not be read") from None
    return dst


def grid_bounds(transform: Affine, width: int, height: int) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a ``width`` x ``height`` grid in its CRS."""
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (width, height)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _relative_name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(Path(path).relative_to(Path(root).resolve()))
        except ValueError:
            pass
    return Path(path).name
