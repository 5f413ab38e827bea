"""The processor settings read from pygeoapi-config.yml: the engine's precision."""

from __future__ import annotations

import pytest

from sanchari_processes.errors import SettingsError
from sanchari_processes.service.settings import ProcessSettings


def test_precision_is_a_processor_setting() -> None:
    assert ProcessSettings.from_mapping({}).engine.inference.precision == "auto"
    settings = ProcessSettings.from_mapping({"precision": "int8", "backend": "openvino"})
    assert settings.engine.inference.precision == "int8"
    assert settings.engine.inference.backend == "openvino"


def test_an_unknown_precision_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="setting precision must be one of"):
        ProcessSettings.from_mapping({"precision": "int4"})
