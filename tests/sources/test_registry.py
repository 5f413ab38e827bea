"""The imagery-source registry: a request's inputs validated, its source chosen and planned."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanchari_processes.errors import InvalidInputError, SettingsError
from sanchari_processes.inputs import CRS84, RequestOptions
from sanchari_processes.service.process import RoadExtractionProcessor
from sanchari_processes.sources.base import SourceSettings
from sanchari_processes.sources.cog import RemotePlan
from sanchari_processes.sources.mosaic import WindowPlan
from sanchari_processes.sources.registry import SOURCES, build_sources, choose
from sanchari_processes.sources.settings import RemoteSettings
from sanchari_processes.sources.stac import StacPlan
from tests.service_fixtures import utm_point


@pytest.fixture(scope="module")
def processor(catalogue_dir: Path) -> RoadExtractionProcessor:
    return RoadExtractionProcessor(
        {
            "name": "x",
            "geotiff_dir": str(catalogue_dir),
            "max_pixels": 256 * 256,
            "default_window_size": 128,
        }
    )


def _prepare(processor: RoadExtractionProcessor, inputs: dict):
    return processor.prepare(inputs, "job", Path("/nonexistent/job"))


def test_point_request_with_options(processor: RoadExtractionProcessor) -> None:
    lon, lat = utm_point(128, 128)
    job = _prepare(
        processor,
        {"latitude": lat, "longitude": lon, "tta": "d4", "window_size": 64.0, "threshold": 0.3},
    )
    assert isinstance(job.plan, WindowPlan) and (job.plan.width, job.plan.height) == (64, 64)
    assert job.options == RequestOptions(threshold=0.3, tta="d4", simplify_m=1.0)
    assert job.parameters["window_size"] == 64.0


def test_sources_are_chosen_by_the_form_of_the_request(processor: RoadExtractionProcessor) -> None:
    bbox = _prepare(processor, {"bbox": {"bbox": [*utm_point(10, 100), *utm_point(100, 10)]}})
    assert isinstance(bbox.plan, WindowPlan)
    assert _prepare(processor, {"image": "utm.tif"}).plan.whole_file
    cog = _prepare(processor, {"image": {"href": "https://x.org/a.tif"}}).plan
    assert isinstance(cog, RemotePlan) and cog.needs_network and cog.bbox is None
    for stac in (
        {"href": "https://x.org/items/a"},
        {"href": "https://x.org/item.json"},
        {"href": "https://x.org/a", "type": "application/geo+json"},
    ):
        assert isinstance(_prepare(processor, {"image": stac}).plan, StacPlan), stac
    windowed = _prepare(
        processor, {"image": "https://x.org/a.tif", "bbox": {"bbox": [2.3, 48.8, 2.4, 48.9]}}
    ).plan
    assert windowed.bbox == ((2.3, 48.8, 2.4, 48.9), CRS84)


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"latitude": -91, "longitude": 0}, "'latitude' must be >= -90"),
        ({"latitude": 0, "longitude": 180.5}, "'longitude' must be <= 180"),
        ({"latitude": 0, "longitude": 0, "threshold": -0.1}, "'threshold' must be >= 0"),
        ({"latitude": 0, "longitude": 0, "window_size": 100.5}, "'window_size' must be of type"),
        ({"latitude": None, "longitude": 0}, "'latitude' must be of type number"),
        ({"longitude": 0}, "'latitude' is required"),
        ({"image": {"url": "a.tif"}}, "'image'"),
        ({"bbox": {"bbox": [0, 0, 1, 1], "srs": "x"}}, "'bbox'"),
        ({"bbox": {"bbox": [0, 0, 1, 1]}, "image": "a.tif"}, "exactly one"),
        ({"image": "a.tif", "window_size": 128}, "window_size"),
        ({"image": "https://x.org/a.tif", "window_size": 128}, "'window_size' does not apply"),
        ({"image": "https://x.org/a.tif", "latitude": 1, "longitude": 1}, "does not apply"),
        ({"image": "https://127.0.0.1/a.tif"}, "not a public internet address"),
        ({"bbox": {"bbox": [0, 95, 1, 96]}}, "out of range"),
        ({"tta": "none"}, "exactly one"),
        ({"latitude": 0, "longitude": 0, "extra": 1}, "unknown input(s) 'extra'"),
    ],
)
def test_rejections_name_the_input(
    processor: RoadExtractionProcessor, inputs: dict, words: str
) -> None:
    with pytest.raises(InvalidInputError) as err:
        _prepare(processor, inputs)
    assert words in err.value.message
    assert err.value.http_status == 400


def test_registry_builds_named_sources_and_refuses_unknown_ones(tmp_path: Path) -> None:
    settings = SourceSettings(max_pixels=4096, default_window_size=64, geotiff_dir=tmp_path)
    built = build_sources(["stac", "cog"], settings)
    assert [s.name for s in built] == ["stac", "cog"] and set(SOURCES) >= {"catalogue", "gee"}
    assert choose(built, {"image": "https://x.org/a.tif"}).name == "cog"
    with pytest.raises(InvalidInputError):
        choose(built, {"latitude": 1, "longitude": 2})
    with pytest.raises(SettingsError, match="unknown imagery source"):
        build_sources(["catalogue", "ftp"], settings)
    assert RemoteSettings().concurrency >= 1
