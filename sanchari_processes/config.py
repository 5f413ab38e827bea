"""Typed configuration, passed explicitly into each stage (never read from globals).

Every option list and default lives here once; the CLI, the service, the training tools and the
docs import them. Vectorizer lengths are in metres and converted to pixels with the raster's
ground sample distance; the defaults are the V4 design's pixel values at its 0.5 m training
resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

TTAMode = Literal["none", "flip4", "d4"]
#: Test-time augmentation modes: identity only, the V4 design's four views, the whole D4 group.
TTA_MODES: tuple[str, ...] = get_args(TTAMode)
DEFAULT_TTA: TTAMode = "flip4"

DeviceName = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(DeviceName)

BackendName = Literal["auto", "torch", "onnxruntime", "openvino"]
#: ``auto``: torch on CUDA; on a CPU the fastest installed runtime that meets the accuracy bar
#: (see :data:`sanchari_processes.inference.backends.CPU_PREFERENCE`).
BACKENDS: tuple[str, ...] = get_args(BackendName)

PrecisionName = Literal["auto", "fp32", "fp16", "int8"]
#: Arithmetic of the network. ``auto``: OpenVINO on a CPU runs the model's int8 network where the
#: model carries one (the shipped model does), else the backend's fastest float (OpenVINO:
#: bfloat16 where the CPU has it natively, else float32; torch on CUDA: float16 autocast);
#: ``fp32`` forces float32; ``fp16`` float16 (CUDA, or OpenVINO on CPUs with float16
#: arithmetic); ``int8`` the NNCF-quantised network ``sanchari model-export --precision int8``
#: writes (OpenVINO).
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)
#: Patches drawn from calibration images to fit the int8 ranges (NNCF's default subset size).
CALIBRATION_PATCHES = 300

#: Road probability cut-off when neither the user nor a checkpoint names one.
DEFAULT_THRESHOLD = 0.45
DEFAULT_SIMPLIFY_M = 1.0

#: Patches a forward pass takes on a CPU: measured per patch, one 512² patch at a time is fastest
#: (larger batches spill the U-Net++ decoder's activations out of the caches).
CPU_BATCH_SIZE = 1
#: Share of a patch its neighbours overlap: 25 % with Gaussian blending keeps 50 %'s held-out
#: IoU with 0.56x the patches (see the model card's Speed section).
DEFAULT_OVERLAP = 0.25
CUDA_BATCH_SIZE = 8


#: The most STAC Items one AOI run may read (a search or an ItemCollection); more is refused.
MAX_STAC_ITEMS = 500


@dataclass(frozen=True)
class InferenceConfig:
    """How the segmentation model is run over an image."""

    patch_size: int = 512
    #: Patch step; ``None``: the patch less :data:`DEFAULT_OVERLAP` (384 for 512 px patches).
    stride: int | None = None
    #: Patches per forward pass; ``None`` picks the device's measured best.
    batch_size: int | None = None
    tta: TTAMode = DEFAULT_TTA
    device: DeviceName = "auto"
    backend: BackendName = "auto"
    #: Arithmetic of the network (see :data:`PRECISIONS`).
    precision: PrecisionName = "auto"
    #: Reflected context at the raster's edges (model pixels), beyond the stride slack. 0, as
    #: the seed's loop: 128 px measured +0.0002 held-out IoU for more patches on small rasters,
    #: and put a false road along a real tile's alpha edge.
    edge_margin: int = 0
    #: Side of the blocks streamed from disk (model-GSD pixels), in whole strides. Context between
    #: blocks is the patch overlap they share, so blocks add no patches.
    stream_window: int = 2048
    #: Road probability this close to no-data (alpha, nodata, masks) is dropped: the model's
    #: view there is half filled in.
    nodata_margin_m: float = 3.0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.stride is None and self.patch_size > 0:
            step = max(1, round(self.patch_size * (1.0 - DEFAULT_OVERLAP)))
            object.__setattr__(self, "stride", step)
        if self.patch_size <= 0 or not 0 < (self.stride or 0) <= self.patch_size:
            raise ValueError("need 0 < stride <= patch_size")
        if self.batch_size is not None and self.batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if self.tta not in TTA_MODES:
            raise ValueError(f"unknown TTA mode {self.tta!r}; use one of {', '.join(TTA_MODES)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; use one of {', '.join(DEVICES)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            choices = ", ".join(PRECISIONS)
            raise ValueError(f"unknown precision {self.precision!r}; use one of {choices}")
        if self.edge_margin < 0 or self.stream_window <= 0:
            raise ValueError("need edge_margin >= 0 and stream_window > 0")
        if not self.nodata_margin_m >= 0:
            raise ValueError("nodata_margin_m must be >= 0")


@dataclass(frozen=True)
class VectorizeConfig:
    """Mask clean-up, graph pruning, gap bridging and simplification (lengths in metres)."""

    threshold: float = DEFAULT_THRESHOLD
    fill_holes_m2: float = 100.0  # 400 px at 0.5 m
    min_object_m2: float = 25.0  # 100 px at 0.5 m
    closing_radius_m: float = 1.5  # disk(3) at 0.5 m
    spur_length_m: float = 10.0  # 20 px at 0.5 m
    self_loop_m: float = 50.0  # 100 px perimeter at 0.5 m
    bridge_max_m: float = 15.0
    bridge_max_angle_deg: float = 35.0
    simplify_m: float = DEFAULT_SIMPLIFY_M
    #: Mask areas wider than this are not a road (a field or car park the model marked):
    #: they are removed before skeletonizing, which would otherwise thin them for minutes.
    max_road_width_m: float = 50.0
    #: Side of the tiles the skeleton graph is built in (pixels); sknw indexes with int16.
    tile_size: int = 4096
    tile_overlap: int = 256
    progress: bool = False
    #: Where the graph code keeps its compiled machine code between runs (~4 s a command);
    #: ``None``: compiled anew in each process. Enabled when the first graph is built, so a
    #: command's first patch does not wait for the compiler's libraries to load.
    jit_cache: Path | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be within 0..1")
        if self.tile_size > 30000 or self.tile_size <= 2 * self.tile_overlap:
            raise ValueError("need 2 * tile_overlap < tile_size <= 30000")
