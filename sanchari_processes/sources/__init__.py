"""Imagery sources: each turns a place or a file into georeferenced raster chips."""

from sanchari_processes.sources.raster import RasterSource, open_raster

__all__ = ["RasterSource", "open_raster"]
