"""What an adaptation may be asked for: its options, their defaults and limits, defined once.

Light on purpose (no raster or model libraries), so the command line and the service check a
request before anything heavy loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sanchari_processes.config import DEFAULT_TTA, TTAMode
from sanchari_processes.errors import InvalidInputError

#: Default road width burnt around a centreline, and the ignored band on each side of it.
DEFAULT_ROAD_WIDTH_M = 6.0
DEFAULT_IGNORE_M = 2.0
MAX_ROAD_WIDTH_M, MAX_IGNORE_M = 50.0, 20.0
#: The default area: the roads' convex hull grown by this much.
DEFAULT_AREA_MARGIN_M = 30.0
#: Side of a fold block in metres.
DEFAULT_BLOCK_M = 128.0
#: Budget limits, minutes.
MIN_MINUTES, MAX_MINUTES = 0.5, 120.0


@dataclass(frozen=True)
class AdaptConfig:
    """What the user chose for one adaptation."""

    road_width_m: float = DEFAULT_ROAD_WIDTH_M
    ignore_m: float = DEFAULT_IGNORE_M
    area_margin_m: float = DEFAULT_AREA_MARGIN_M
    #: Wall minutes for the fine-tunes (the two folds and the final run share it): a cap on
    #: ``steps``, which on an idle 2-core machine it does not reach.
    minutes: float = 5.0
    #: Fine-tuning steps of each run (two folds, then every labelled block).
    steps: int = 150
    finetune: bool = True
    #: Out-of-fold IoU the fine-tune must add over the base model (at its own or a re-chosen
    #: threshold, whichever is better) to be kept; it must also win on each fold.
    min_gain: float = 0.005
    block_m: float = DEFAULT_BLOCK_M
    tta: TTAMode = DEFAULT_TTA
    seed: int = 0
    lr: float = 1e-4
    crop: int = 192
    batch: int = 4

    def __post_init__(self) -> None:
        if not MIN_MINUTES <= self.minutes <= MAX_MINUTES:
            raise InvalidInputError(
                f"the budget must be within {MIN_MINUTES:g}..{MAX_MINUTES:g} minutes"
            )
        if not 0 < self.road_width_m <= MAX_ROAD_WIDTH_M or not 0 <= self.ignore_m <= MAX_IGNORE_M:
            raise InvalidInputError(
                f"need 0 < road width <= {MAX_ROAD_WIDTH_M:g} m and "
                f"0 <= ignored band <= {MAX_IGNORE_M:g} m"
            )
