"""Writing results so that nothing already stored is lost when a run fails half-way."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sanchari_processes.errors import InvalidInputError


def write_json_atomic(data: Any, path: Path) -> None:
    """Write ``data`` as JSON via a temporary file and a rename (never a half-written file)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError(f"output directory does not exist: {parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; honour the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask: from /proc on Linux (thread-safe), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
