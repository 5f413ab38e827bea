"""Google Earth Engine as an imagery source of the service (``road-extraction-gee``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sanchari_processes.inputs import InputSpec
from sanchari_processes.sources.base import SourceSettings
from sanchari_processes.sources.gee.credentials import GeeSettings, resolve_credentials
from sanchari_processes.sources.gee.fetch import GeePlan, plan_gee
from sanchari_processes.sources.gee.request import gee_inputs, parse_request


class GeeSource:
    """A chip of NAIP or Sentinel-2 around a point (state: none; EE starts in workers)."""

    name = "gee"

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self.gee = settings.gee or GeeSettings()

    def inputs(self) -> dict[str, InputSpec]:
        return gee_inputs(self.settings.max_pixels, self.settings.default_window_size)

    def accepts(self, inputs: Mapping[str, Any]) -> bool:
        return True

    def plan(self, inputs: Mapping[str, Any]) -> GeePlan:
        """Validate and plan (400/413), and check credentials exist (503) — all offline."""
        request = parse_request(dict(inputs))
        plan = plan_gee(
            request.longitude,
            request.latitude,
            collection=request.collection,
            scale_m=request.scale,
            window_px=request.window_size or self.settings.default_window_size,
            start=request.start_date,
            end=request.end_date,
            today=date.today(),
            max_pixels=self.settings.max_pixels,
            settings=self.gee,
        )
        resolve_credentials(self.gee)
        return plan
