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
