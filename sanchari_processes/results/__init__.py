"""What a job can produce: its outputs, each in the formats it can be written in.

One :class:`OutputKind` per output (``roads``, ``mask``, ``probability``, ``preview``), each
with its formats (the first is the default) and the file it is written to. The OGC process
description, the execute request's ``outputs`` and the job's writers all read this one table.
An adaptation job has its own table, :data:`MODEL_OUTPUTS` (the adapted model's record).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sanchari_processes.errors import InvalidInputError

GEOJSON = "application/geo+json"
GPKG = "application/geopackage+sqlite3"
FGB = "application/flatgeobuf"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG = "image/png"
JSON = "application/json"
#: The job's list of files written, output id -> file name and media type.
MANIFEST = "results.json"


@dataclass(frozen=True)
class OutputFormat:
    """One way to write an output: its media type, file name, and what else it is called."""

    media_type: str
    file_name: str
    binary: bool = True
    aliases: tuple[str, ...] = ()

    def matches(self, media_type: str) -> bool:
        wanted = _normalise(media_type)
        return wanted in {_normalise(m) for m in (self.media_type, *self.aliases)}


@dataclass(frozen=True)
class OutputKind:
    """One output of the road-extraction processes."""

    id: str
    title: str
    description: str
    formats: tuple[OutputFormat, ...]

    @property
    def default(self) -> OutputFormat:
        return self.formats[0]

    def format_for(self, media_type: str | None) -> OutputFormat:
        """The format for a requested media type (the default for none; 400 when unknown)."""
        if not media_type:
            return self.default
        for fmt in self.formats:
            if fmt.matches(media_type):
                return fmt
        offered = ", ".join(f.media_type for f in self.formats)
        raise InvalidInputError(
            f"output '{self.id}': format {media_type[:100]!r} is not produced; one of {offered}"
        )

    def describe(self) -> dict[str, Any]:
        """The OGC process-description entry."""
        schemas = []
        for fmt in self.formats:
            if fmt.binary:
                schemas.append(
                    {
                        "type": "string",
                        "contentEncoding": "binary",
                        "contentMediaType": fmt.media_type,
                    }
                )
            else:
                schemas.append({"type": "object", "contentMediaType": fmt.media_type})
        schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
        return {"title": self.title, "description": self.description, "schema": schema}


def _normalise(media_type: str) -> str:
    return ";".join(part.strip().lower() for part in media_type.split(";") if part.strip())


OUTPUTS: Mapping[str, OutputKind] = MappingProxyType(
    {
        "roads": OutputKind(
            "roads",
            "Road centrelines",
            "Road centrelines (EPSG:4326), one LineString per segment between junctions with "
            "length_m and mean_probability. GeoJSON (default; its 'sanchari' member records "
            "the provenance: model id and checksum, source, window, options), GeoPackage or "
            "FlatGeobuf.",
            (
                OutputFormat(GEOJSON, "roads.geojson", binary=False, aliases=("application/json",)),
                OutputFormat(GPKG, "roads.gpkg", aliases=("application/x-sqlite3",)),
                OutputFormat(FGB, "roads.fgb", aliases=("application/x-flatgeobuf",)),
            ),
        ),
        "mask": OutputKind(
            "mask",
            "Road mask",
            "Binary road mask (0 background, 255 road) on the imagery's grid, as a "
            "Cloud-Optimized GeoTIFF (deflate, with overviews).",
            (OutputFormat(COG, "mask.tif", aliases=("image/tiff; application=geotiff",)),),
        ),
        "probability": OutputKind(
            "probability",
            "Road probability",
            "The model's road probability (float32, 0..1) on the imagery's grid, as a "
            "Cloud-Optimized GeoTIFF (deflate, with overviews).",
            (OutputFormat(COG, "probability.tif", aliases=("image/tiff; application=geotiff",)),),
        ),
        "preview": OutputKind(
            "preview",
            "Preview",
            "A PNG of the imagery (longest side at most 2048 px) with the roads drawn in red "
            "and segment ends in yellow.",
            (OutputFormat(PNG, "preview.png"),),
        ),
    }
)

#: What a model adaptation job produces: the adapted model's record.
MODEL_OUTPUTS: Mapping[str, OutputKind] = MappingProxyType(
    {
        "model": OutputKind(
            "model",
            "Adapted model",
            "The adapted model's record: its id in the models folder (pass it as 'model' to "
            "road-extraction), its parent model, the verdict of the guarded adaptation, its "
            "threshold, what was measured (report) and its card (Markdown).",
            (OutputFormat(JSON, "model.json", binary=False),),
        )
    }
)
#: Every output id of every process (stored requests and result files are read with it).
ALL_OUTPUTS: Mapping[str, OutputKind] = MappingProxyType({**OUTPUTS, **MODEL_OUTPUTS})
