"""TTA transforms invert exactly and averaging is neutral for orientation-free models."""

from __future__ import annotations

import pytest
import torch

from sanchari_processes.inference.tta import predict_with_tta, tta_transforms

SHAPES = [(2, 3, 16, 16), (1, 2, 8, 12)]


@pytest.mark.parametrize("mode", ["none", "flip4", "d4"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_transform_inverts_exactly(mode: str, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    for t in tta_transforms(mode):  # type: ignore[arg-type]
        assert torch.equal(t.inverse(t.forward(x)), x), t.name
        assert torch.equal(t.forward(t.inverse(x)), x), t.name


def test_mode_sizes_and_names() -> None:
    assert [t.name for t in tta_transforms("none")] == ["identity"]
    assert [t.name for t in tta_transforms("flip4")] == ["identity", "hflip", "vflip", "rot90"]
    assert len(tta_transforms("d4")) == 8


def test_d4_transforms_are_distinct() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)  # no symmetry, so every view differs
    views = {tuple(t.forward(x).flatten().tolist()) for t in tta_transforms("d4")}
    assert len(views) == 8


def test_transforms_are_what_they_are_named() -> None:
    x = torch.randn(1, 2, 5, 5)
    expected = {
        "identity": x,
        "hflip": torch.flip(x, dims=(-1,)),
        "vflip": torch.flip(x, dims=(-2,)),
        "rot90": torch.rot90(x, 1, dims=(-2, -1)),
        "rot180": torch.flip(x, dims=(-2, -1)),
        "transpose": x.transpose(-2, -1),
        "antitranspose": torch.flip(x, dims=(-2, -1)).transpose(-2, -1),
    }
    for t in tta_transforms("d4"):
        if t.name in expected:
            assert torch.equal(t.forward(x), expected[t.name]), t.name


def _equivariant(x: torch.Tensor) -> torch.Tensor:
    """A per-pixel model: commutes with every flip and rotation."""
    return (x * torch.arange(1.0, x.shape[1] + 1).view(1, -1, 1, 1)).sum(1, keepdim=True)


@pytest.mark.parametrize("mode", ["none", "flip4", "d4"])
@pytest.mark.parametrize("shape", SHAPES)
def test_tta_of_equivariant_fn_equals_fn(mode: str, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape)
    out = predict_with_tta(_equivariant, x, mode)  # type: ignore[arg-type]
    assert out.shape == (shape[0], 1, *shape[2:])
    assert torch.allclose(out, torch.sigmoid(_equivariant(x)), atol=1e-6)


def test_d4_average_is_orientation_free() -> None:
    """A model with a fixed directional bias is symmetrised by D4 averaging."""
    ramp = torch.linspace(-3, 3, 8).view(1, 1, 1, 8)

    def biased(x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] + ramp.expand_as(x[:, :1])

    x = torch.zeros(1, 1, 8, 8)
    out = predict_with_tta(biased, x, "d4")
    for t in tta_transforms("d4"):
        assert torch.allclose(t.forward(out), out, atol=1e-6)
    assert not torch.allclose(predict_with_tta(biased, x, "none"), out)


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown TTA mode"):
        tta_transforms("d8")  # type: ignore[arg-type]
