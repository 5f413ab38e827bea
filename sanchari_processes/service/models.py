"""The models folder: adapted models, one sub-folder per model id, that outlive the server.

An adaptation job writes its model into a staging folder inside the models folder and renames
it into place once it is whole, so a listing never sees half a model and a crash leaves only a
staging folder (named with a dot, never listed, swept when old). Ids are names, never paths:
``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``. Each folder holds what
:func:`sanchari_processes.adapt.run.adapt` writes: ``<id>.safetensors``, ``<id>.json``
(metadata; ``metrics["adaptation"]`` is the report, with the parent) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from sanchari_processes.errors import InvalidInputError, ModelMissingError, SanchariError
from sanchari_processes.inference.metadata import ModelMetadata, read_metadata

LOGGER = logging.getLogger(__name__)

#: What a model id may be (a folder name of its own, never a path).
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_MODEL_ID = re.compile(MODEL_ID_PATTERN)
CARD = "MODEL_CARD.md"
#: Staging folders of adaptations (``.staging-<job id>``) and of deletions.
_STAGING, _DELETING = ".staging-", ".deleting-"
#: Staging folders older than this were left by a stopped job (seconds): swept.
STALE_S = 6 * 3600.0


class ModelNotFoundError(SanchariError):
    """No model with that id in the models folder."""

    ogc_code = "NoSuchModel"
    http_status = 404


class ModelExistsError(SanchariError):
    """The models folder already holds a model with that id."""

    ogc_code = "InvalidParameterValue"
    http_status = 400


def is_model_id(text: Any) -> bool:
    return isinstance(text, str) and _MODEL_ID.fullmatch(text) is not None


def check_model_id(text: Any, what: str) -> str:
    """``text`` when it is a valid model id, else a 400 naming ``what`` (the input)."""
    if not is_model_id(text):
        raise InvalidInputError(
            f"{what} must be a model id: 1 to 64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit"
        )
    return str(text)


def safe_id(text: str, limit: int = 40) -> str:
    """``text`` made into the start of a model id (other characters become '-')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:limit].lstrip("._-")
    return cleaned or "model"


class ModelStore:
    """The models folder (no state but its path; every call reads the folder)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def find(self, model_id: str) -> Path | None:
        """The folder of model ``model_id``, or ``None`` (an invalid id is never a folder)."""
        if not is_model_id(model_id):
            return None
        folder = self.root / model_id
        return folder if (folder / f"{model_id}.json").is_file() else None

    def folder(self, model_id: str) -> Path:
        """The folder of ``model_id``; 404 :class:`ModelNotFoundError` when there is none."""
        found = self.find(model_id)
        if found is None:
            raise ModelNotFoundError(f"no model {str(model_id)[:64]!r} in the models folder")
        return found

    def ids(self) -> list[str]:
        """Ids of the models in the folder, sorted."""
        try:
            names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        except OSError:
            return []
        return [name for name in names if self.find(name) is not None]

    def summaries(self) -> list[dict[str, Any]]:
        """One :func:`summary` per readable model (an unreadable one is logged and skipped)."""
        found = []
        for model_id in self.ids():
            try:
                found.append(summary(model_id, read_metadata(self.root / model_id)))
            except ModelMissingError as exc:
                LOGGER.warning("models folder: %s skipped: %s", model_id, exc.message)
        return found

    def read(self, model_id: str) -> dict[str, Any]:
        """A model's summary, its whole metadata and its card (404 when unknown)."""
        folder = self.folder(model_id)
        metadata = read_metadata(folder)
        try:
            card = (folder / CARD).read_text(encoding="utf-8")
        except OSError:
            card = ""
        described = {**summary(model_id, metadata), "metadata": metadata.to_dict(), "card": card}
        return jsonable(described)  # type: ignore[no-any-return]

    def delete(self, model_id: str) -> None:
        """Remove a model (404 when unknown): renamed away first, so it vanishes at once."""
        folder = self.folder(model_id)
        doomed = self.root / f"{_DELETING}{model_id}-{os.urandom(4).hex()}"
        try:
            folder.rename(doomed)
        except FileNotFoundError:
            raise ModelNotFoundError(f"no model {model_id!r} in the models folder") from None
        shutil.rmtree(doomed, ignore_errors=True)

    def staging(self, job_id: str) -> Path:
        """An empty staging folder for job ``job_id``'s model (any earlier one is removed)."""
        folder = self.root / f"{_STAGING}{job_id}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def publish(self, staging: Path, model_id: str) -> Path:
        """Rename a whole staged model into place as ``model_id`` (400 when the id was taken
        meanwhile: the staged model is removed)."""
        target = self.root / check_model_id(model_id, "the model id")
        try:
            if target.exists():
                raise FileExistsError(target)
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelExistsError(
                f"a model named {model_id!r} was written while this job ran; choose another name"
            ) from None
        return target

    def sweep(self, max_age_s: float = STALE_S) -> None:
        """Remove staging folders older than ``max_age_s`` and unfinished deletions."""
        try:
            entries = list(self.root.iterdir())
        except OSError:
            return
        now = time.time()
        for entry in entries:
            with contextlib.suppress(OSError):
                stale = now - entry.stat().st_mtime > max_age_s
                if entry.name.startswith(_DELETING) or (entry.name.startswith(_STAGING) and stale):
                    shutil.rmtree(entry, ignore_errors=True)


def adaptation_of(metadata: ModelMetadata) -> dict[str, Any]:
    """The adaptation report of a model's metadata (``{}`` for a model not adapted here)."""
    report = (metadata.metrics or {}).get("adaptation")
    return report if isinstance(report, dict) else {}


def parent_of(metadata: ModelMetadata) -> dict[str, Any] | None:
    """``{"model_id", "sha256"}`` of the model ``metadata``'s model was adapted from."""
    parent = adaptation_of(metadata).get("parent")
    return parent if isinstance(parent, dict) else None


def summary(model_id: str, metadata: ModelMetadata) -> dict[str, Any]:
    """What ``GET /models`` lists of a model."""
    parent = parent_of(metadata)
    return {
        "id": model_id,
        "parent": parent.get("model_id") if parent else None,
        "verdict": adaptation_of(metadata).get("verdict"),
        "threshold": jsonable(metadata.threshold),
        "created": metadata.created,
    }


def jsonable(value: Any) -> Any:
    """``value`` with non-finite numbers as ``null`` (reports hold NaN where nothing was
    measured; JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
