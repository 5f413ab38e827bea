"""Atomic JSON results: whole files only, readable as the umask allows."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from sanchari_processes.results.files import write_json_atomic


def test_result_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_json_atomic({"a": 1}, tmp_path / "open.json")
        os.umask(0o077)
        write_json_atomic({"a": 2}, tmp_path / "private.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "open.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    assert json.loads((tmp_path / "open.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
