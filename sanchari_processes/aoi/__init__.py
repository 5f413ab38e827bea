"""District-scale runs: an area of interest over many scenes, in blocks, stitched, resumable.

``grid`` cuts the AOI into square blocks on one model grid; ``scenes`` lists the imagery (a
folder of GeoTIFFs, a STAC ItemCollection, COG URLs); ``tasks`` runs one block (read its window,
predict, vectorize, clip to its core); ``stitch`` joins lines across block seams; ``record``
keeps finished blocks beside the output for ``--resume``; ``run`` drives it all, here or on a
Dask cluster, and writes GeoPackage, FlatGeobuf or GeoJSON.
"""

from sanchari_processes.aoi.grid import Grid, load_aoi, make_grid
from sanchari_processes.aoi.run import AoiPlan, RunSummary, plan_aoi, run_aoi
from sanchari_processes.aoi.scenes import Scene, find_scenes

__all__ = [
    "AoiPlan",
    "Grid",
    "RunSummary",
    "Scene",
    "find_scenes",
    "load_aoi",
    "make_grid",
    "plan_aoi",
    "run_aoi",
]
