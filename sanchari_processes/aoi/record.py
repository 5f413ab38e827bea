"""The record of finished blocks beside the output, so an interrupted run resumes.

``OUTPUT.blocks/`` holds ``run.json`` (what the run is: AOI, grid, scenes, model and settings)
and one ``BLOCK.json`` per finished block (its clipped lines and costs), each written to a
temporary name and renamed, so a block is either recorded whole or not at all. ``--resume``
runs only the blocks not recorded, and the output is stitched from the record, so it is the
same as an uninterrupted run's. A record of a different run is refused, never mixed in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sanchari_processes.aoi.stitch import Piece
from sanchari_processes.aoi.tasks import BlockResult
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.results.files import write_json_atomic

RUN_FILE = "run.json"
VERSION = 1


def record_dir(output: Path) -> Path:
    """Where the record of a run writing ``output`` lies."""
    return output.with_name(output.name + ".blocks")


class BlockRecord:
    """The finished blocks of one run (state: the folder)."""

    def __init__(self, folder: Path, run: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.run = {"version": VERSION, **run}

    @classmethod
    def open(cls, output: Path, run: dict[str, Any], *, resume: bool) -> BlockRecord:
        """The record for ``output``: continued with ``resume``, else started afresh."""
        record = cls(record_dir(output), run)
        saved = record.folder / RUN_FILE
        if resume and saved.is_file():
            try:
                before = json.loads(saved.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                before = None
            if before != json.loads(json.dumps(record.run)):
                raise InvalidInputError(
                    f"{record.folder} records a different run (AOI, imagery, grid or model "
                    "differ): drop --resume to start over"
                )
            return record
        if record.folder.exists():
            shutil.rmtree(record.folder)
        record.folder.mkdir(parents=True)
        write_json_atomic(record.run, saved)
        return record

    def done(self) -> set[str]:
        """Names of the recorded blocks."""
        return {p.stem for p in self.folder.glob("x*_y*.json")}

    def add(self, result: BlockResult) -> None:
        data = {
            "block": result.name,
            "km2": result.km2,
            "cpu_s": round(result.cpu_s, 3),
            "wall_s": round(result.wall_s, 3),
            "rss_mib": round(result.rss_mib, 1),
            "coverage": round(result.coverage, 4),
            "pieces": [p.to_json() for p in result.pieces],
        }
        write_json_atomic(data, self.folder / f"{result.name}.json")

    def load(self, name: str) -> tuple[list[Piece], dict[str, float]]:
        """A recorded block's pieces and costs."""
        data = json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
        pieces = [Piece.from_json(p) for p in data.pop("pieces")]
        return pieces, {k: v for k, v in data.items() if isinstance(v, (int, float))}

    def iter_costs(self) -> Iterator[dict[str, float]]:
        for name in sorted(self.done()):
            yield self.load(name)[1]
