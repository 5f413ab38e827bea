"""Which imagery sources exist, and which one serves a request.

A process names its sources (``sources`` in its ``pygeoapi-config.yml`` block, in the order
they are asked); each is built once from the process's settings. The first source whose
:meth:`~sanchari_processes.sources.base.ImagerySource.accepts` is true plans the request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sanchari_processes.errors import InvalidInputError, SettingsError
from sanchari_processes.inputs import InputSpec
from sanchari_processes.sources.base import ImagerySource, SourceSettings
from sanchari_processes.sources.catalogue import CatalogueSource
from sanchari_processes.sources.cog import CogSource
from sanchari_processes.sources.gee.source import GeeSource
from sanchari_processes.sources.stac import StacSource
from sanchari_processes.sources.upload import UploadSource

#: Every imagery source, by the name configurations use.
SOURCES: Mapping[str, Callable[[SourceSettings], ImagerySource]] = MappingProxyType(
    {
        "catalogue": CatalogueSource,
        "stac": StacSource,
        "cog": CogSource,
        "gee": GeeSource,
        "upload": UploadSource,
    }
)


def build_sources(names: Sequence[str], settings: SourceSettings) -> tuple[ImagerySource, ...]:
    """The named sources, built for one process (unknown names are a settings error)."""
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names:
        raise SettingsError(
            f"unknown imagery source(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"known: {', '.join(SOURCES)}"
        )
    return tuple(SOURCES[name](settings) for name in names)


def source_inputs(sources: Sequence[ImagerySource]) -> dict[str, InputSpec]:
    """The inputs the sources read, in order (an input two sources share is listed once)."""
    specs: dict[str, InputSpec] = {}
    for source in sources:
        for name, spec in source.inputs().items():
            specs.setdefault(name, spec)
    return specs


def choose(sources: Sequence[ImagerySource], inputs: Mapping[str, Any]) -> ImagerySource:
    """The first source that takes the request (a 400 when none does)."""
    for source in sources:
        if source.accepts(inputs):
            return source
    raise InvalidInputError("no imagery source of this process takes these inputs")
