"""Settings read at the edges: GDAL's cache cap and the default weights location."""

from __future__ import annotations

import os
from pathlib import Path

from sanchari_processes.settings import (
    GDAL_CACHE_MB,
    SHIPPED_WEIGHTS,
    configure_gdal,
    default_weights,
)


def test_gdal_cache_capped_unless_user_chose(monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    configure_gdal()
    assert os.environ["GDAL_CACHEMAX"] == str(GDAL_CACHE_MB)
    monkeypatch.setenv("GDAL_CACHEMAX", "2048")
    configure_gdal()
    assert os.environ["GDAL_CACHEMAX"] == "2048"


def test_default_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("SANCHARI_WEIGHTS", raising=False)
    assert default_weights() == SHIPPED_WEIGHTS
    assert (Path(__file__).resolve().parents[1] / "weights").resolve() == SHIPPED_WEIGHTS
    monkeypatch.setenv("SANCHARI_WEIGHTS", str(tmp_path))
    assert default_weights() == tmp_path
