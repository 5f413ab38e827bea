"""Segmentation network factory: one frozen description, one builder, a few named presets.

The architecture is data (stored in every checkpoint's metadata) rather than code, so a
checkpoint rebuilds exactly the network it was trained with. Encoders are always created with
``encoder_weights=None``: nothing may download weights at run time; trained weights come from a
checkpoint, and ImageNet initialisation is the training code's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sanchari_processes.errors import InvalidInputError

if TYPE_CHECKING:  # torch and smp take seconds to import: only building a network needs them
    import torch

#: Architectures :func:`build_model` knows how to build.
SUPPORTED_ARCHS = ("UnetPlusPlus",)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """Everything needed to rebuild the network (not its weights)."""

    arch: str = "UnetPlusPlus"
    encoder_name: str
    encoder_depth: int = 5
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    in_channels: int = 3
    classes: int = 1

    def __post_init__(self) -> None:
        if self.arch not in SUPPORTED_ARCHS:
            raise InvalidInputError(
                f"unsupported architecture {self.arch!r}; supported: {', '.join(SUPPORTED_ARCHS)}"
            )
        if not isinstance(self.encoder_name, str) or not self.encoder_name:
            raise InvalidInputError("encoder_name must be a non-empty string")
        if not isinstance(self.decoder_channels, tuple) or not all(
            _is_int(c) and c > 0 for c in self.decoder_channels
        ):
            raise InvalidInputError("decoder_channels must be a tuple of positive integers")
        for name in ("encoder_depth", "in_channels", "classes"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if not 3 <= self.encoder_depth <= 5:
            raise InvalidInputError(f"encoder_depth must be 3..5, got {self.encoder_depth}")
        if len(self.decoder_channels) != self.encoder_depth:
            raise InvalidInputError(
                f"decoder_channels needs encoder_depth={self.encoder_depth} entries, "
                f"got {len(self.decoder_channels)}"
            )

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (one halving per encoder stage)."""
        return 2**self.encoder_depth

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        data = asdict(self)
        data["decoder_channels"] = list(self.decoder_channels)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        """Inverse of :meth:`to_dict`; rejects unknown keys so typos do not pass silently."""
        if not isinstance(data, Mapping):
            raise InvalidInputError("architecture must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"architecture has unknown keys: {', '.join(unknown)}")
        if "encoder_name" not in data:
            raise InvalidInputError("architecture is missing 'encoder_name'")
        kwargs = dict(data)
        channels = kwargs.get("decoder_channels")
        if isinstance(channels, list | tuple):
            kwargs["decoder_channels"] = tuple(channels)
        elif channels is not None:
            raise InvalidInputError("decoder_channels must be a list of positive integers")
        return cls(**kwargs)


def build_model(architecture: Architecture) -> torch.nn.Module:
    """Build the untrained network described by ``architecture`` (never downloads weights)."""
    import segmentation_models_pytorch as smp

    try:
        return smp.UnetPlusPlus(
            encoder_name=architecture.encoder_name,
            encoder_depth=architecture.encoder_depth,
            decoder_channels=architecture.decoder_channels,
            in_channels=architecture.in_channels,
            classes=architecture.classes,
            encoder_weights=None,
        )
    except (KeyError, ValueError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(
            f"cannot build {architecture.arch} with encoder {architecture.encoder_name!r}: {detail}"
        ) from None


#: Named architectures. ``v4`` is the original V4 design (EfficientNet-B4, ~20.8 M parameters);
#: the EfficientNet-Lite encoders are CPU-friendly (no squeeze-excite, ReLU6). They use smp's
#: ``tu-`` (timm universal) encoders: the ``timm-`` variants are deprecated in smp 0.6 and a
#: checkpoint naming a removed encoder could no longer be loaded.
PRESETS: Mapping[str, Architecture] = MappingProxyType(
    {
        "v4": Architecture(encoder_name="efficientnet-b4"),
        "lite0": Architecture(encoder_name="tu-tf_efficientnet_lite0"),
        "lite2": Architecture(encoder_name="tu-tf_efficientnet_lite2"),
    }
)


def get_preset(name: str) -> Architecture:
    """Look up a named architecture, listing the valid names when ``name`` is unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown model preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}"
        ) from None


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (trainable or not), for reports and model cards."""
    return sum(p.numel() for p in model.parameters())
