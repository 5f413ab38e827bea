"""A GeoTIFF/COG by http(s) reference as an imagery source, read by range requests.

The request only names the raster; its header is read off the web threads
(:meth:`RemotePlan.complete`), then the job copies the part it needs (the whole raster, or the
window inside ``bbox``) block by block through the SSRF guard (:mod:`.remote`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inputs import InputSpec, image_href, parse_bbox
from sanchari_processes.sources.base import Imagery, Progress, SourceSettings
from sanchari_processes.sources.catalogue import BBOX_INPUT, IMAGE_INPUT
from sanchari_processes.sources.remote import (
    Bbox,
    RemoteRaster,
    RemoteSettings,
    check_href,
    fetch_remote,
    is_http_url,
    probe_remote,
)


@dataclass(frozen=True)
class RemotePlan:
    """A remote raster to read: its URL, until :meth:`complete` probes it, then its window."""

    href: str
    settings: RemoteSettings
    max_pixels: int
    bbox: Bbox | None = None
    raster: RemoteRaster | None = None
    #: Provenance members the raster came with (a STAC Item's, for one).
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    #: 1-based bands to read, in red, green, blue order (``None``: as the raster says).
    bands: tuple[int, ...] | None = None

    @property
    def needs_network(self) -> bool:
        return self.raster is None

    def complete(self) -> RemotePlan:
        if self.raster is not None:
            return self
        raster = probe_remote(self.href, self.max_pixels, self.settings, self.bbox)
        if self.bands is not None and max(self.bands) > raster.count:
            raise InvalidInputError(
                f"input 'image': the raster has {raster.count} band(s), fewer than described"
            )
        return replace(self, raster=raster)

    def materialise(self, workdir: Path, progress: Progress) -> Imagery:
        raster = self.complete().raster
        assert raster is not None
        path = fetch_remote(raster, workdir, self.settings, progress, bands=self.bands)
        return Imagery(path, self.href, {"window": raster.describe(), **self.provenance})


def remote_plan_inputs(
    inputs: Mapping[str, Any], settings: SourceSettings
) -> tuple[str, RemoteSettings, Bbox | None]:
    """The checks every remote source shares: the href's form, ``bbox``, no point inputs."""
    href, _ = image_href(inputs)
    assert href is not None
    for name in ("latitude", "longitude", "window_size"):
        if name in inputs:
            raise InvalidInputError(
                f"input '{name}' does not apply to a remote 'image' (use 'bbox' to read part)"
            )
    remote = settings.remote or RemoteSettings()
    check_href(href, remote)
    bbox = parse_bbox(inputs) if "bbox" in inputs else None
    return href, remote, bbox


class CogSource:
    """A GeoTIFF/COG at an http(s) URL (state: none)."""

    name = "cog"

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    def inputs(self) -> dict[str, InputSpec]:
        return {"image": IMAGE_INPUT, "bbox": BBOX_INPUT}

    def accepts(self, inputs: Mapping[str, Any]) -> bool:
        href, _ = image_href(inputs)
        return href is not None and is_http_url(href)

    def plan(self, inputs: Mapping[str, Any]) -> RemotePlan:
        href, remote, bbox = remote_plan_inputs(inputs, self.settings)
        return RemotePlan(href, remote, self.settings.max_pixels, bbox)
