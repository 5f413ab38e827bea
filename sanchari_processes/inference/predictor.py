"""Run a loaded model over a whole image: normalise, slide, augment, blend, mask no-data.

The predictor holds no state besides the model and its configuration, so one instance can be
reused for many images (and the model itself comes from the per-process cache).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from sanchari_processes.config import InferenceConfig
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference.checkpoint import LoadedModel, ModelMetadata, load_model_cached
from sanchari_processes.inference.nodata import fill_smooth, shrink_valid
from sanchari_processes.inference.sliding import sliding_window_predict
from sanchari_processes.inference.tta import predict_with_tta

ProgressFn = Callable[[int, int], None]


def normalise(image: np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    """``(x / input_scale - mean) / std`` per band, as float32 (the model's training input)."""
    mean = np.asarray(metadata.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(metadata.std, dtype=np.float32)[:, None, None]
    scaled = image.astype(np.float32) / np.float32(metadata.input_scale)
    return (scaled - mean) / std


@contextlib.contextmanager
def _tqdm_progress(enabled: bool) -> Iterator[ProgressFn | None]:
    """A ``progress(done, total)`` callback drawing a tqdm bar, or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    with tqdm(unit="patch", desc="inference") as bar:

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield update


class Predictor:
    """Turns raw imagery into a road-probability map with one loaded model."""

    def __init__(self, loaded: LoadedModel, config: InferenceConfig) -> None:
        multiple = loaded.metadata.architecture.size_multiple
        if config.patch_size % multiple:
            raise InvalidInputError(
                f"patch_size {config.patch_size} must be a multiple of {multiple} for this model"
            )
        self._loaded = loaded
        self._config = config

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], config: InferenceConfig) -> Predictor:
        """Predictor for a checkpoint on ``config.device``, loaded once per process."""
        return cls(load_model_cached(path, config.device), config)

    @property
    def metadata(self) -> ModelMetadata:
        """The model's metadata (bands, normalisation, GSD, recommended threshold)."""
        return self._loaded.metadata

    @property
    def config(self) -> InferenceConfig:
        return self._config

    def _predict_batch(self, patches: np.ndarray) -> np.ndarray:
        """``(N, C, p, p)`` normalised patches -> ``(N, p, p)`` TTA-averaged probabilities."""
        device = self._loaded.device
        batch = torch.from_numpy(patches).to(device)
        with (
            torch.inference_mode(),
            torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"),
        ):
            probs = predict_with_tta(self._loaded.module, batch, self._config.tta)
        return probs[:, 0].float().cpu().numpy()

    def predict(
        self,
        image: np.ndarray,
        valid: np.ndarray | None = None,
        progress: ProgressFn | None = None,
        margin: int | None = None,
    ) -> np.ndarray:
        """Road probability ``(H, W)`` float32 in [0, 1] for a ``(C, H, W)`` raw-pixel image.

        Bands must be in ``metadata.bands`` order. Pixels where ``valid`` is False (or any band
        is NaN/inf) are fed to the model as their nearest valid pixel, so no edge appears where
        the data ends, and get probability 0, as does everything within
        ``nodata_margin_m`` of them. ``margin`` is passed to
        :func:`sliding_window_predict` (0 when the caller already padded the image with context).
        """
        bands = self.metadata.bands
        if image.ndim != 3 or image.shape[0] != len(bands):
            raise InvalidInputError(
                f"image must have {len(bands)} bands ({', '.join(bands)}) as (C, H, W), "
                f"got shape {image.shape}"
            )
        height, width = image.shape[1:]
        if valid is not None and (valid.shape != (height, width) or valid.dtype != np.bool_):
            raise InvalidInputError(
                f"valid must be a boolean ({height}, {width}) mask, got {valid.dtype} {valid.shape}"
            )
        x = normalise(image, self.metadata)
        finite = np.isfinite(x).all(axis=0)
        mask = finite if valid is None else valid & finite
        x = fill_smooth(x, mask)

        cfg = self._config
        with _tqdm_progress(cfg.progress and progress is None) as bar:
            prob = sliding_window_predict(
                x,
                self._predict_batch,
                patch_size=cfg.patch_size,
                stride=cfg.stride,
                batch_size=cfg.batch_size,
                progress=progress or bar,
                margin=margin,
            )
        np.clip(prob, 0.0, 1.0, out=prob)
        prob[~shrink_valid(mask, cfg.nodata_margin_m / self.metadata.gsd_m)] = 0.0
        return prob
