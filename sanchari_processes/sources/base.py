"""The imagery-source interface: a request becomes a plan, a plan becomes a raster on disk.

A source is one module: it declares the process inputs it reads, says whether a request is its
to serve, and plans it (validation, limits, which files or which grid — offline, so a bad
request is a 4xx before any job exists). The plan is picklable and travels to a worker, where
:meth:`SourcePlan.materialise` writes (or finds) a raster the engine reads, with progress. A
plan that still has to read remote headers says so (:attr:`SourcePlan.needs_network`); the
service then runs :meth:`SourcePlan.complete` off its web threads before queueing the job.

Adding a source: one module with a class following :class:`ImagerySource` (and its plan), and
one line in :mod:`sanchari_processes.sources.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sanchari_processes.inputs import InputSpec
    from sanchari_processes.sources.gee.credentials import GeeSettings
    from sanchari_processes.sources.settings import RemoteSettings

#: Progress callbacks receive the fraction of the work done, 0..1.
Progress = Callable[[float], None]


@dataclass(frozen=True)
class Imagery:
    """A raster the engine can read, what to call it, and what it was made from."""

    path: Path
    name: str
    #: Members added to the result's ``sanchari`` provenance record (``window``, ``imagery``…).
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceSettings:
    """What sources may use from a process's configuration (picklable)."""

    max_pixels: int
    default_window_size: int
    geotiff_dir: Path = Path("geotiffs")
    remote: RemoteSettings | None = None
    gee: GeeSettings | None = None


class SourcePlan(Protocol):
    """A validated, planned read of imagery (picklable: it travels to a worker)."""

    @property
    def needs_network(self) -> bool:
        """Whether :meth:`complete` still has to read something over the network."""
        ...

    def complete(self) -> SourcePlan:
        """The plan with its remote headers read (blocking; 4xx errors as in planning)."""
        ...

    def materialise(self, workdir: Path, progress: Progress) -> Imagery:
        """A readable raster for the engine, in ``workdir`` (or an existing file)."""
        ...


class ImagerySource(Protocol):
    """One way to get imagery for a request (built once per process from its settings)."""

    name: str

    def inputs(self) -> dict[str, InputSpec]:
        """The process inputs this source reads (shared ones use the same specs)."""
        ...

    def accepts(self, inputs: Mapping[str, Any]) -> bool:
        """Whether this (schema-valid) request is this source's to serve."""
        ...

    def plan(self, inputs: Mapping[str, Any]) -> SourcePlan:
        """Check the request and plan the read, without network (400/404/413/503)."""
        ...
