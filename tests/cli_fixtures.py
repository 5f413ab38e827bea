"""Running ``sanchari`` in-process, and the plug-in commands setup.cfg declares."""

from __future__ import annotations

import configparser
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from sanchari_processes.cli import main
from sanchari_processes.cli.group import ENTRY_POINT_GROUP

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``sanchari ARGS``: exit status, stdout, stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def declared_commands() -> dict[str, EntryPoint]:
    """The ``sanchari.commands`` entry points as setup.cfg declares them (what an install of
    this checkout registers, whatever the environment has installed)."""
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG, encoding="utf-8")
    text = parser["options.entry_points"][ENTRY_POINT_GROUP]
    pairs = (line.split("=", 1) for line in text.strip().splitlines())
    return {
        name.strip(): EntryPoint(name.strip(), value.strip(), ENTRY_POINT_GROUP)
        for name, value in pairs
    }
