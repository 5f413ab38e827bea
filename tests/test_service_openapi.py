"""openapi.yml is pygeoapi's own rendering of pygeoapi-config.yml, and stays so."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygeoapi.openapi import generate_openapi_document

from sanchari_processes.service.app import DEFAULT_CONFIG

ROOT = DEFAULT_CONFIG.parent


def test_openapi_yml_matches_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SANCHARI_GEOTIFF_DIR",
        "SANCHARI_WEIGHTS",
        "SANCHARI_JOBS_DIR",
        "SANCHARI_WORKERS",
        "SANCHARI_QUEUE_SIZE",
        "SANCHARI_MAX_PIXELS",
        "SANCHARI_DEVICE",
    ):
        monkeypatch.delenv(name, raising=False)
    expected = generate_openapi_document(
        DEFAULT_CONFIG, "yaml"
    )  # what `pygeoapi openapi generate` writes
    current = (ROOT / "openapi.yml").read_text(encoding="utf-8")
    assert current == expected, (
        "openapi.yml is stale: run `pygeoapi openapi generate pygeoapi-config.yml "
        "--output-file openapi.yml`"
    )


def test_openapi_lists_the_process() -> None:
    text = (Path(ROOT) / "openapi.yml").read_text(encoding="utf-8")
    assert "/processes/road-extraction/execution:" in text
    assert "/jobs/{jobId}/results:" in text
