"""Vectorize a road mask rasterised from real OpenStreetMap roads and score it against OSM.

The Paris SpaceNet scene in ``../shared/data/scenes`` (650 x 650 px, EPSG:4326, ~0.3 m) comes
with its OSM centrelines. Rasterising those lines at a 6 m road width gives a perfect road mask;
a *degraded* copy adds what a segmentation model gets wrong (4 m gaps across roads, speckle,
small holes, short spurs). Each mask is vectorized and scored in the scene's UTM zone:

* recall: share of the OSM length within 3 m of the output;
* precision: share of the output length within 3 m of OSM;
* APLS (``training.apls``: CosmiQ-style, 50 m control points, 4 m snapping);
* connected components of both networks, and the shortest cycle of the output.

The helpers are imported by ``tests/test_vectorize_paris.py``, which asserts the thresholds.

    python benchmarks/check_paris_osm.py [--shared ../shared] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.features import rasterize

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sanchari_processes.config import VectorizeConfig  # noqa: E402
from sanchari_processes.vectorize import vectorize_probability  # noqa: E402
from training.apls import apls, graph_from_lines  # noqa: E402

DEFAULT_SHARED = REPO.parent / "shared"
SCENE = Path("data/scenes/paris_img1447.tif")
ROADS = Path("data/scenes/paris_img1447_osm_roads.geojson")
ROAD_WIDTH_M = 6.0
TOLERANCE_M = 3.0


@dataclass(frozen=True)
class Scene:
    """The scene's grid, its OSM roads, and the local UTM CRS that lengths are measured in."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS
    utm: CRS
    roads_utm: list[shapely.LineString]

    def to_utm(self) -> Transformer:
        return Transformer.from_crs(self.crs, self.utm, always_xy=True)


@dataclass(frozen=True)
class Score:
    """How well a vectorization matches OSM."""

    recall: float
    precision: float
    osm_components: int
    components: int
    shortest_cycle_m: float
    features: int
    length_m: float
    apls: float

    def lines(self, label: str) -> str:
        cycle = "none" if math.isinf(self.shortest_cycle_m) else f"{self.shortest_cycle_m:.1f} m"
        return (
            f"{label}: {self.features} features, {self.length_m:.0f} m; "
            f"OSM within {TOLERANCE_M:g} m of output {self.recall:.1%}, "
            f"output within {TOLERANCE_M:g} m of OSM {self.precision:.1%}; "
            f"APLS {self.apls:.3f}; "
            f"components {self.components} (OSM {self.osm_components}); "
            f"shortest loop {cycle}"
        )


def reproject_geometry(
    func: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    geometry: shapely.Geometry,
) -> shapely.Geometry:
    """Apply a pyproj ``transform(x, y)`` to every vertex of a geometry."""
    return shapely.transform(geometry, lambda xy: np.column_stack(func(xy[:, 0], xy[:, 1])))


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone containing ``lon, lat``."""
    info = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    return CRS.from_epsg(info[0].code)


def load_scene(shared: Path) -> Scene:
    """Read the scene's grid and its OSM roads (reprojected to UTM)."""
    with rasterio.open(shared / SCENE) as ds:
        shape, transform, crs = (ds.height, ds.width), ds.transform, CRS.from_user_input(ds.crs)
        lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
            *transform @ (ds.width / 2, ds.height / 2)
        )
    utm = utm_crs_for(lon, lat)
    project = Transformer.from_crs("EPSG:4326", utm, always_xy=True).transform
    features = json.loads((shared / ROADS).read_text())["features"]
    roads = [
        reproject_geometry(project, shapely.force_2d(shapely.geometry.shape(f["geometry"])))
        for f in features
    ]
    return Scene(shape, transform, crs, utm, roads)


def pixel_centres_utm(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """UTM easting and northing of every pixel centre, as two ``shape`` arrays."""
    rows, cols = np.mgrid[0 : scene.shape[0], 0 : scene.shape[1]]
    x, y = scene.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
    east, north = scene.to_utm().transform(x, y)
    return np.reshape(east, scene.shape), np.reshape(north, scene.shape)


def road_mask(scene: Scene, width_m: float = ROAD_WIDTH_M) -> np.ndarray:
    """Rasterise the OSM roads buffered to ``width_m`` (in metres, in UTM) on the scene's grid."""
    back = Transformer.from_crs(scene.utm, scene.crs, always_xy=True).transform
    shapes = [
        reproject_geometry(back, road.buffer(width_m / 2.0, cap_style="flat"))
        for road in scene.roads_utm
    ]
    return rasterize(
        shapes, out_shape=scene.shape, transform=scene.transform, fill=0, default_value=1
    ).astype(bool)


def segment_distance(
    east: np.ndarray, north: np.ndarray, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Distance from every ``(east, north)`` point to the segment ``a``-``b``."""
    ab = b - a
    t = np.clip(((east - a[0]) * ab[0] + (north - a[1]) * ab[1]) / float(ab @ ab), 0.0, 1.0)
    return np.hypot(east - (a[0] + t * ab[0]), north - (a[1] + t * ab[1]))


def degrade_mask(scene: Scene, mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """Add a segmentation model's typical errors to a clean road mask.

    4 m gaps across roads (away from junctions and ends), speckle blobs, small holes inside
    roads and short spurs sticking out of road edges.
    """
    rng = np.random.default_rng(seed)
    east, north = pixel_centres_utm(scene)
    out = mask.copy()
    network = shapely.union_all(scene.roads_utm)
    gaps = 0
    for index in rng.permutation(len(scene.roads_utm)):
        road = scene.roads_utm[index]
        others = shapely.union_all([r for i, r in enumerate(scene.roads_utm) if i != index])
        for frac in (0.35, 0.65):
            if gaps >= 4 or road.length < 40:
                break
            at = road.interpolate(frac, normalized=True)
            if others.distance(at) < 20:  # keep gaps clear of junctions
                continue
            ahead = road.interpolate(min(road.project(at) + 1.0, road.length))
            tx, ty = ahead.x - at.x, ahead.y - at.y
            norm = math.hypot(tx, ty)
            tx, ty = tx / norm, ty / norm
            dx, dy = east - at.x, north - at.y
            along, across = dx * tx + dy * ty, -dx * ty + dy * tx
            out[(np.abs(along) <= 2.0) & (np.abs(across) <= ROAD_WIDTH_M)] = False
            gaps += 1
    road_rows, road_cols = np.nonzero(mask)
    for _ in range(25):  # speckle: blobs well under min_object_m2, away from roads
        r, c = rng.integers(0, scene.shape[0]), rng.integers(0, scene.shape[1])
        if network.distance(shapely.Point(east[r, c], north[r, c])) < 10:
            continue
        radius = rng.uniform(0.5, 1.8)
        out[np.hypot(east - east[r, c], north - north[r, c]) <= radius] = True
    for _ in range(15):  # small holes inside roads
        i = rng.integers(len(road_rows))
        r, c = road_rows[i], road_cols[i]
        radius = rng.uniform(0.4, 1.2)
        out[np.hypot(east - east[r, c], north - north[r, c]) <= radius] = False
    for _ in range(12):  # short spurs: thin 3 m stubs from a road edge
        road = scene.roads_utm[rng.integers(len(scene.roads_utm))]
        at = road.interpolate(rng.uniform(0.2, 0.8), normalized=True)
        ahead = road.interpolate(min(road.project(at) + 1.0, road.length))
        direction = np.array([ahead.x - at.x, ahead.y - at.y])
        normal = np.array([-direction[1], direction[0]]) / np.hypot(*direction)
        normal *= rng.choice([-1.0, 1.0])
        root = np.array([at.x, at.y]) + normal * ROAD_WIDTH_M / 2.0
        out |= segment_distance(east, north, root, root + normal * 3.0) <= 0.5
    return out


def output_graph(collection: dict) -> nx.MultiGraph:
    """The output's node/edge structure from the features' ``u``/``v``/``length_m``."""
    g = nx.MultiGraph()
    for feature in collection["features"]:
        props = feature["properties"]
        g.add_edge(props["u"], props["v"], length=props["length_m"])
    return g


def shortest_cycle_m(g: nx.MultiGraph) -> float:
    """Length of the shortest cycle (self-loops and parallel edges included); inf if none."""
    best = math.inf
    simple = nx.Graph()
    for u, v, data in g.edges(data=True):
        if u == v:
            best = min(best, data["length"])
            continue
        if simple.has_edge(u, v):
            old = simple[u][v]["length"]
            best = min(best, old + data["length"])
            simple[u][v]["length"] = min(old, data["length"])
        else:
            simple.add_edge(u, v, length=data["length"])
    for cycle in nx.minimum_cycle_basis(simple, weight="length"):
        ring = nx.cycle_graph(cycle)
        total = sum(simple[a][b]["length"] for a, b in ring.edges())
        best = min(best, total)
    return best


def network_components(lines: list[shapely.LineString], tolerance: float = 0.5) -> int:
    """Connected components of lines that touch (within ``tolerance`` metres)."""
    g = nx.Graph()
    g.add_nodes_from(range(len(lines)))
    tree = shapely.STRtree(lines)
    for i, line in enumerate(lines):
        for j in tree.query(line, predicate="dwithin", distance=tolerance):
            if i != int(j):
                g.add_edge(i, int(j))
    return nx.number_connected_components(g)


def score(scene: Scene, collection: dict) -> Score:
    """Compare a vectorization (EPSG:4326 GeoJSON) with the scene's OSM roads, in metres."""
    project = Transformer.from_crs("EPSG:4326", scene.utm, always_xy=True).transform
    output = [
        reproject_geometry(project, shapely.geometry.shape(f["geometry"]))
        for f in collection["features"]
    ]
    osm = shapely.union_all(scene.roads_utm)
    found = shapely.union_all(output) if output else shapely.LineString()
    osm_length = osm.length
    found_length = found.length
    recall = osm.intersection(found.buffer(TOLERANCE_M)).length / osm_length if output else 0.0
    precision = found.intersection(osm.buffer(TOLERANCE_M)).length / found_length if output else 0.0
    g = output_graph(collection)
    osm_graph = graph_from_lines([list(line.coords) for line in scene.roads_utm])
    found_graph = graph_from_lines([list(line.coords) for line in output])
    return Score(
        recall=recall,
        precision=precision,
        osm_components=network_components(scene.roads_utm),
        components=nx.number_connected_components(g),
        shortest_cycle_m=shortest_cycle_m(g),
        features=len(collection["features"]),
        length_m=found_length,
        apls=apls(osm_graph, found_graph)["apls"] if output else 0.0,
    )


def vectorize_mask(scene: Scene, mask: np.ndarray, config: VectorizeConfig | None = None) -> dict:
    """Vectorize a 0/1 mask on the scene's grid."""
    return vectorize_probability(
        mask.astype(np.float32), scene.transform, scene.crs, config or VectorizeConfig()
    )


def check(shared: Path, seed: int = 0) -> dict[str, Score]:
    """Scores for the clean and the degraded mask."""
    scene = load_scene(shared)
    clean = road_mask(scene)
    degraded = degrade_mask(scene, clean, seed)
    return {
        "clean": score(scene, vectorize_mask(scene, clean)),
        "degraded": score(scene, vectorize_mask(scene, degraded)),
    }


def write_masks(shared: Path, folder: Path, seed: int = 0) -> list[Path]:
    """Save the clean and degraded masks as 0/255 GeoTIFFs on the scene's grid.

    They are the inputs of the command-line check: ``sanchari vectorize`` each, then
    ``--score`` the GeoJSON it wrote.
    """
    scene = load_scene(shared)
    clean = road_mask(scene)
    written = []
    for name, mask in (("clean", clean), ("degraded", degrade_mask(scene, clean, seed))):
        path = folder / f"paris_osm_mask_{name}.tif"
        profile = {"driver": "GTiff", "height": scene.shape[0], "width": scene.shape[1]}
        profile.update(count=1, dtype="uint8", crs=scene.crs, transform=scene.transform)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write((mask > 0).astype(np.uint8)[None] * 255)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradation")
    parser.add_argument(
        "--write-masks", type=Path, metavar="DIR", help="save the clean/degraded masks as GeoTIFFs"
    )
    parser.add_argument(
        "--score", type=Path, nargs="+", metavar="GEOJSON", help="score existing GeoJSON outputs"
    )
    args = parser.parse_args(argv)
    if not (args.shared / SCENE).exists():
        print(f"no Paris scene under {args.shared}", file=sys.stderr)
        return 2
    if args.write_masks:
        for path in write_masks(args.shared, args.write_masks, args.seed):
            print(path)
        return 0
    if args.score:
        scene = load_scene(args.shared)
        for path in args.score:
            print(score(scene, json.loads(path.read_text())).lines(path.name))
        return 0
    for label, result in check(args.shared, args.seed).items():
        print(result.lines(label))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
