"""Model factory: architecture description, presets, building without downloads."""

from __future__ import annotations

import warnings

import pytest
import torch

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference.model import (
    PRESETS,
    Architecture,
    build_model,
    count_parameters,
    get_preset,
)


def test_architecture_dict_round_trip(tiny_architecture: Architecture) -> None:
    data = tiny_architecture.to_dict()
    assert data["decoder_channels"] == [16, 8, 4]
    assert data["arch"] == "UnetPlusPlus"
    assert Architecture.from_dict(data) == tiny_architecture


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"encoder_name": "resnet18", "colour": 1}, "unknown keys: colour"),
        ({"encoder_depth": 5}, "missing 'encoder_name'"),
        ({"encoder_name": "resnet18", "arch": "Unet"}, "unsupported architecture"),
        ({"encoder_name": "resnet18", "encoder_depth": 4}, "decoder_channels needs"),
        ({"encoder_name": "resnet18", "in_channels": 0}, "in_channels must be a positive"),
        ({"encoder_name": "resnet18", "decoder_channels": "16"}, "decoder_channels must be"),
        ({"encoder_name": "resnet18", "encoder_depth": 2, "decoder_channels": [4, 2]}, "3..5"),
    ],
)
def test_architecture_rejects_bad_dicts(data: dict, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        Architecture.from_dict(data)


def test_presets_are_immutable_and_named() -> None:
    assert set(PRESETS) == {"v4", "lite0", "lite2"}
    assert get_preset("v4").encoder_name == "efficientnet-b4"
    assert get_preset("lite0").encoder_name == "tu-tf_efficientnet_lite0"
    with pytest.raises(TypeError):
        PRESETS["mine"] = get_preset("v4")  # type: ignore[index]


def test_get_preset_unknown_lists_valid_names() -> None:
    with pytest.raises(InvalidInputError, match="valid presets: lite0, lite2, v4"):
        get_preset("v5")


def test_build_v4_matches_original_design_size() -> None:
    model = build_model(get_preset("v4"))
    assert 20_000_000 < count_parameters(model) < 21_500_000  # 20.8 M


def test_build_lite0_runs_forward() -> None:
    model = build_model(get_preset("lite0")).eval()
    assert 5_000_000 < count_parameters(model) < 6_000_000  # 5.4 M
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 1, 64, 64)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_without_deprecated_encoders(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        build_model(get_preset(name))


def test_build_tiny_forward_shape(tiny_architecture: Architecture) -> None:
    model = build_model(tiny_architecture).eval()
    assert tiny_architecture.size_multiple == 8
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 40, 72)).shape == (2, 1, 40, 72)


def test_build_unknown_encoder_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="no-such-encoder"):
        build_model(Architecture(encoder_name="no-such-encoder"))
