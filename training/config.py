"""Typed training configuration, built by the CLIs and passed into :func:`training.loop.train`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sanchari_processes.errors import InvalidInputError

LossName = Literal["combo", "lovasz"]
StyleMode = Literal["fda", "histogram"]
STYLE_MODES: tuple[StyleMode, ...] = ("fda", "histogram")


@dataclass(frozen=True)
class Augment:
    """Which augmentations a training run adds to the V4 ones (all off = the V4 recipe)."""

    #: Wide photometric changes, for other sensors, regions and seasons.
    photometric: bool = False
    #: Random zoom (min, max) before cropping, e.g. (0.7, 1.4): other resolutions, GSD errors.
    scale: tuple[float, float] | None = None
    #: Style transfer toward the run's ``style_dir`` images (unlabelled target domain), with
    #: probability ``style_p``: Fourier domain adaptation (low-frequency amplitude swap) or
    #: histogram matching.
    style: StyleMode = "fda"
    style_p: float = 0.5
    #: Share of samples given a synthetic no-data area (a random half-plane), filled as
    #: inference fills no-data and labelled "no road", so no-data edges are not read as roads.
    nodata_p: float = 0.0

    def __post_init__(self) -> None:
        if self.scale is not None and not 0 < self.scale[0] <= self.scale[1]:
            raise InvalidInputError(f"scale range must be 0 < min <= max, got {self.scale}")
        if self.style not in STYLE_MODES:
            raise InvalidInputError(f"unknown style transfer {self.style!r}")
        if not 0.0 <= self.style_p <= 1.0:
            raise InvalidInputError("style probability must be within 0..1")
        if not 0.0 <= self.nodata_p <= 1.0:
            raise InvalidInputError("no-data probability must be within 0..1")


Schedule = Literal["cosine", "constant"]


@dataclass(frozen=True)
class Phase:
    """One stage of the recipe: its loss, learning rate, length and which tiles it sees."""

    name: str
    loss: LossName = "combo"
    lr: float = 5e-4
    epochs: int = 50
    schedule: Schedule = "cosine"
    #: Train only on the hardest fraction of training tiles (Phase 2), by per-tile IoU.
    hard_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.loss not in ("combo", "lovasz"):
            raise InvalidInputError(f"unknown loss {self.loss!r}")
        if self.schedule not in ("cosine", "constant"):
            raise InvalidInputError(f"unknown schedule {self.schedule!r}")
        if not self.lr > 0 or self.epochs < 1:
            raise InvalidInputError("a phase needs lr > 0 and epochs >= 1")
        if self.hard_fraction is not None and not 0 < self.hard_fraction <= 1:
            raise InvalidInputError("hard fraction must be within (0, 1]")


def phase1(epochs: int = 50, lr: float = 5e-4) -> Phase:
    """V4 Phase 1: ComboLoss, AdamW lr 5e-4 with cosine annealing, 50 epochs."""
    return Phase("main", loss="combo", lr=lr, epochs=epochs, schedule="cosine")


def phase2(epochs: int = 10, lr: float = 1e-5, fraction: float = 0.2) -> Phase:
    """V4 Phase 2: fine-tune on the hardest 20 % of training tiles at lr 1e-5 for 10 epochs."""
    return Phase(
        "hard", loss="combo", lr=lr, epochs=epochs, schedule="constant", hard_fraction=fraction
    )


def phase3(epochs: int = 20, lr: float = 1e-5) -> Phase:
    """V4 Phase 3: Lovász hinge at lr 1e-5 for 20 epochs, from the best Phase-1 weights."""
    return Phase("lovasz", loss="lovasz", lr=lr, epochs=epochs, schedule="constant")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; stored in the run's state and checkpoints."""

    manifest: Path
    out_dir: Path
    phases: tuple[Phase, ...] = field(default_factory=lambda: (phase1(),))
    preset: str = "lite0"
    #: Start from these weights (engine checkpoint) instead of ImageNet / random.
    init_weights: Path | None = None
    imagenet: bool = True
    batch_size: int = 8
    accumulate: int = 2
    weight_decay: float = 1e-4
    crop: int = 512
    augment: bool = True
    #: The domain-robust augmentations on top of the V4 ones (all off by default: V4).
    augment_options: Augment = field(default_factory=Augment)
    #: Unlabelled target-domain images that style transfer draws from (None: no style transfer).
    style_dir: Path | None = None
    #: How evenly data sources are sampled: 0 = by tile count, 1 = equal shares (see
    #: :func:`training.dataset.source_weights`).
    source_balance: float = 0.0
    #: Training samples per epoch (None: one per training tile); epochs pace validation.
    epoch_tiles: int | None = None
    #: Stop after this many optimizer steps in total (across resumes); None = run all phases.
    max_steps: int | None = None
    #: Also write ``last`` + state every this many optimizer steps (0 = only at epoch ends).
    save_every: int = 100
    #: Validate on at most this many validation tiles (None = all).
    val_max_tiles: int | None = None
    val_threshold: float = 0.5
    num_workers: int = 2
    threads: int | None = None
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    resume: bool = False
    progress: bool = True
    model_id: str | None = None

    def __post_init__(self) -> None:
        if not self.phases:
            raise InvalidInputError("at least one training phase is needed")
        if self.batch_size < 1 or self.accumulate < 1:
            raise InvalidInputError("batch size and accumulation must be >= 1")
        if self.crop < 32 or self.crop % 32:
            raise InvalidInputError(f"crop must be a multiple of 32, got {self.crop}")
        if self.max_steps is not None and self.max_steps < 1:
            raise InvalidInputError("max steps must be >= 1")
        if self.num_workers < 0 or self.save_every < 0:
            raise InvalidInputError("num workers and save-every must be >= 0")
        if not 0 < self.val_threshold < 1:
            raise InvalidInputError("validation threshold must be within (0, 1)")
        if not 0.0 <= self.source_balance <= 1.0:
            raise InvalidInputError("source balance must be within 0..1")
        if self.epoch_tiles is not None and self.epoch_tiles < 1:
            raise InvalidInputError("epoch tiles must be >= 1")

    def recipe(self) -> dict[str, Any]:
        """The JSON-ready recipe recorded in checkpoint metadata and the run state."""
        data = asdict(self)
        for key in ("manifest", "out_dir", "init_weights", "style_dir"):
            data[key] = str(data[key]) if data[key] is not None else None
        data["phases"] = [asdict(p) for p in self.phases]
        data["effective_batch"] = self.batch_size * self.accumulate
        for key in ("resume", "progress", "num_workers", "threads"):
            data.pop(key)
        return data
