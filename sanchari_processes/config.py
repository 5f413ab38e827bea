"""Typed configuration, passed explicitly into each stage (never read from globals).

Vectorizer lengths are in metres and converted to pixels with the raster's ground sample
distance; the defaults are the V4 design's pixel values at its 0.5 m training resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TTAMode = Literal["none", "flip4", "d4"]
DeviceName = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class InferenceConfig:
    """How the segmentation model is run over an image."""

    patch_size: int = 512
    stride: int = 256
    batch_size: int = 4
    tta: TTAMode = "flip4"
    device: DeviceName = "auto"
    #: Side of the raster windows streamed from disk (model-GSD pixels), before the halo.
    stream_window: int = 2048
    #: Context read around each streamed window so its border pixels see full patches.
    stream_halo: int = 128
    #: Road probability this close to no-data (alpha, nodata, masks) is dropped: the model's
    #: view there is half filled in.
    nodata_margin_m: float = 3.0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.patch_size <= 0 or self.stride <= 0 or self.stride > self.patch_size:
            raise ValueError("need 0 < stride <= patch_size")
        if self.batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if self.tta not in ("none", "flip4", "d4"):
            raise ValueError(f"unknown TTA mode {self.tta!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}")
        if not self.nodata_margin_m >= 0:
            raise ValueError("nodata_margin_m must be >= 0")


@dataclass(frozen=True)
class VectorizeConfig:
    """Mask clean-up, graph pruning, gap bridging and simplification (lengths in metres)."""

    threshold: float = 0.45
    fill_holes_m2: float = 100.0  # 400 px at 0.5 m
    min_object_m2: float = 25.0  # 100 px at 0.5 m
    closing_radius_m: float = 1.5  # disk(3) at 0.5 m
    spur_length_m: float = 10.0  # 20 px at 0.5 m
    self_loop_m: float = 50.0  # 100 px perimeter at 0.5 m
    bridge_max_m: float = 15.0
    bridge_max_angle_deg: float = 35.0
    simplify_m: float = 1.0
    #: Mask areas wider than this are not a road (a field or car park the model marked):
    #: they are removed before skeletonizing, which would otherwise thin them for minutes.
    max_road_width_m: float = 50.0
    #: Side of the tiles the skeleton graph is built in (pixels); sknw indexes with int16.
    tile_size: int = 4096
    tile_overlap: int = 256
    progress: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be within 0..1")
        if self.tile_size > 30000 or self.tile_size <= 2 * self.tile_overlap:
            raise ValueError("need 2 * tile_overlap < tile_size <= 30000")
