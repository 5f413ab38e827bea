"""Fixtures of the command-line tests.

The ``sanchari`` group sees the plug-in commands this checkout declares in setup.cfg: an
environment installed from another checkout (or before the declaration) has other entry points,
so the group reads the declared ones instead, as an install of this checkout would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sanchari_processes.cli import cli
from tests.cli_fixtures import declared_commands
from tests.synthetic import road_image, write_geotiff


@pytest.fixture(autouse=True)
def declared_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "plugins", declared_commands())


@pytest.fixture
def utm_tif(tmp_path: Path) -> Path:
    return write_geotiff(tmp_path / "scene.tif", road_image(96, 128))
