"""Validation of the road-extraction inputs (no server needed)."""

from __future__ import annotations

import pytest

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.service.inputs import CRS84, parse_inputs


def test_point_request_with_options() -> None:
    req = parse_inputs(
        {
            "latitude": 48.8,
            "longitude": 2.3,
            "tta": "d4",
            "window_size": 512.0,
            "threshold": 0.3,
            "simplify_m": 2,
        }
    )
    assert (req.latitude, req.longitude, req.tta, req.window_size) == (48.8, 2.3, "d4", 512)
    assert req.source_kind == "point" and "bbox_crs" not in req.to_dict()


def test_bbox_and_image_forms() -> None:
    req = parse_inputs({"bbox": {"bbox": [2.3, 48.8, 2.4, 48.9]}})
    assert req.bbox == (2.3, 48.8, 2.4, 48.9) and req.bbox_crs == CRS84
    assert parse_inputs({"image": {"href": "https://x.org/a.tif"}}).image == "https://x.org/a.tif"
    assert parse_inputs({"image": "scene.tif"}).source_kind == "image"


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
        ({"bbox": {"bbox": [0, 95, 1, 96]}}, "out of range"),
        ({"tta": "none"}, "exactly one"),
        ({"latitude": 0, "longitude": 0, "extra": 1}, "unknown input(s) 'extra'"),
    ],
)
def test_rejections_name_the_input(inputs: dict, words: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_inputs(inputs)
    assert words in err.value.message
    assert err.value.http_status == 400
