"""The engine: a raster source in, a probability map and road centrelines out.

``build`` turns the user's options and a checkpoint into an :class:`Engine` (predictor on its
backend plus vectorizer settings); ``run`` streams a source through it block by block;
``cluster`` spreads those blocks over a Dask cluster; ``probability`` is the map the blocks
are written into; ``provenance`` records what ran.
"""

from sanchari_processes.engine.build import Engine, EngineOptions, build_engine
from sanchari_processes.engine.run import extract_roads, predict_probability, run_source

__all__ = [
    "Engine",
    "EngineOptions",
    "build_engine",
    "extract_roads",
    "predict_probability",
    "run_source",
]
