"""Settings read from the environment — only at the edges (CLI, server), then passed in."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def package_data(name: str) -> Path:
    """A file the package ships (``sanchari_processes/data``), wherever it is installed.

    In a clone, ``data/weights`` and ``data/pygeoapi-config.yml`` link to the top-level
    ``weights/`` and ``pygeoapi-config.yml``; a built wheel carries copies.
    """
    return Path(str(files("sanchari_processes") / "data" / name)).resolve()


#: The shipped model's folder (the repository's ``weights/``).
SHIPPED_WEIGHTS = package_data("weights")
#: The service's default configuration (the repository's ``pygeoapi-config.yml``).
DEFAULT_CONFIG = package_data("pygeoapi-config.yml")


def default_weights() -> Path:
    """``SANCHARI_WEIGHTS`` if set, else the shipped ``weights/`` folder."""
    env = os.environ.get("SANCHARI_WEIGHTS")
    return Path(env) if env else SHIPPED_WEIGHTS


def default_cache_dir() -> Path:
    """``SANCHARI_CACHE_DIR`` if set, else the user's cache folder (e.g. ``~/.cache/sanchari``).

    It holds the exported models (by checkpoint SHA-256) and the compiled skeleton-graph code;
    everything there is rebuilt when missing, so it is safe to delete.
    """
    env = os.environ.get("SANCHARI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sanchari", appauthor=False))


def default_backend() -> str:
    """``SANCHARI_BACKEND`` if set, else ``auto`` (checked where it is used)."""
    return os.environ.get("SANCHARI_BACKEND") or "auto"


#: GDAL's block cache defaults to 5 % of RAM (1.2 GB on a 24 GB box) and fills up when a large
#: raster is streamed; windows are read once each, so a small cache loses nothing.
GDAL_CACHE_MB = 128


def configure_gdal() -> None:
    """Cap GDAL's block cache unless the user chose a size (call before any raster opens)."""
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))
