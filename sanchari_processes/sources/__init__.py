"""Imagery sources: each turns a request into a raster the engine reads (see :mod:`.base`).

Names are imported on first use, so importing one light module (the CLI's option lists) does
not load GDAL.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RasterSource", "open_raster"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("sanchari_processes.sources.raster"), name)
    raise AttributeError(name)
