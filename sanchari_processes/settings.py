"""Settings read from the environment — only at the edges (CLI, server), then passed in."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository's ``weights/`` folder, where the shipped model lives.
SHIPPED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def default_weights() -> Path:
    """``SANCHARI_WEIGHTS`` if set, else the shipped ``weights/`` folder."""
    env = os.environ.get("SANCHARI_WEIGHTS")
    return Path(env) if env else SHIPPED_WEIGHTS


#: GDAL's block cache defaults to 5 % of RAM (1.2 GB on a 24 GB box) and fills up when a large
#: raster is streamed; windows are read once each, so a small cache loses nothing.
GDAL_CACHE_MB = 128


def configure_gdal() -> None:
    """Cap GDAL's block cache unless the user chose a size (call before any raster opens)."""
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))
