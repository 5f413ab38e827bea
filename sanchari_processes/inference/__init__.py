"""Road segmentation inference: model factory, checkpoints, TTA, sliding window, predictor."""

from sanchari_processes.inference.checkpoint import (
    LoadedModel,
    ModelMetadata,
    clear_model_cache,
    load_checkpoint,
    load_model_cached,
    make_untrained_checkpoint,
    read_metadata,
    resolve_device,
    save_checkpoint,
)
from sanchari_processes.inference.metadata import normalise
from sanchari_processes.inference.model import (
    PRESETS,
    Architecture,
    build_model,
    count_parameters,
    get_preset,
)
from sanchari_processes.inference.predictor import Predictor
from sanchari_processes.inference.sliding import blend_window, plan_axis, sliding_window_predict
from sanchari_processes.inference.tta import Transform, predict_with_tta, tta_transforms

__all__ = [
    "PRESETS",
    "Architecture",
    "LoadedModel",
    "ModelMetadata",
    "Predictor",
    "Transform",
    "blend_window",
    "build_model",
    "clear_model_cache",
    "count_parameters",
    "get_preset",
    "load_checkpoint",
    "load_model_cached",
    "make_untrained_checkpoint",
    "normalise",
    "plan_axis",
    "predict_with_tta",
    "read_metadata",
    "resolve_device",
    "save_checkpoint",
    "sliding_window_predict",
    "tta_transforms",
]
