"""Run a model over an image: normalise, slide, augment, blend, mask no-data.

The predictor holds no state besides its runner (the model on a backend) and its
configuration, so one instance serves many images. It never imports torch itself: the runner
decides what runs the network.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator

import numpy as np
from tqdm import tqdm

from sanchari_processes.config import InferenceConfig
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference.backends import Runner, default_batch_size
from sanchari_processes.inference.checkpoint import ModelMetadata
from sanchari_processes.inference.metadata import normalise
from sanchari_processes.inference.nodata import fill_smooth, shrink_valid
from sanchari_processes.inference.sliding import (
    BlendMode,
    Block,
    BlockPredictor,
    RegionReader,
    RegionWriter,
    blend_window,
    block_numerator,
    reflect_reader,
    stream_predict,
)
from sanchari_processes.inference.tta import average_views

ProgressFn = Callable[[int, int], None]
#: ``read(rows, cols)`` -> ``(raw pixels (C, h, w), valid (h, w))`` of a window inside the grid.
RawReader = Callable[[slice, slice], tuple[np.ndarray, np.ndarray | None]]
#: ``blocks(read, shape)``: a :data:`BlockPredictor` running the blocks of a ``shape`` grid
#: elsewhere (a cluster), each reading its own window through ``read``, which travels there.
RemoteBlocks = Callable[[RawReader, tuple[int, int]], BlockPredictor]
#: How patches are weighted (local runs and cluster workers must agree).
BLEND: BlendMode = "gaussian"


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
    """Turns raw imagery into a road-probability map with one model runner."""

    def __init__(self, runner: Runner, metadata: ModelMetadata, config: InferenceConfig) -> None:
        multiple = metadata.architecture.size_multiple
        if config.patch_size % multiple:
            raise InvalidInputError(
                f"patch_size {config.patch_size} must be a multiple of {multiple} for this model"
            )
        self._runner = runner
        self._metadata = metadata
        self._config = config
        #: The runner wrapped in the configured test-time augmentation.
        self._views = functools.partial(
            average_views, runner, mode=config.tta, batch_views=runner.batch_views
        )
        #: What the patches meet (a bound method, so it pickles).
        self._model = self._valid_only
        self._first_result: float | None = None
        #: Patches skipped so far for holding no valid pixel.
        self.skipped = 0
        #: Patches run through the network so far in this process, and the seconds it took
        #: (every TTA view included): the network's share of a run, as ``predict`` reports it.
        self.patches_run = 0
        self.network_s = 0.0

    def _valid_only(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities of ``(N, C + 1, p, p)`` patches whose last channel is the valid mask:
        a patch with no valid pixel gets zeros without a pass (its pixels are all dropped as
        no-data anyway); the others go through the views, timed."""
        valid = batch[:, -1].reshape(len(batch), -1).any(axis=1)
        out = np.zeros((len(batch), *batch.shape[2:]), np.float32)
        self.skipped += int((~valid).sum())
        if valid.any():
            x = batch[:, :-1] if valid.all() else batch[valid, :-1]
            start = time.perf_counter()
            out[valid] = self._views(np.ascontiguousarray(x))
            done = time.perf_counter()
            self.network_s += done - start
            self.patches_run += len(x)
            if self._first_result is None:
                self._first_result = done
        return out

    @property
    def first_result(self) -> float | None:
        """``time.perf_counter()`` when the first batch's probabilities were ready (start-up
        time: ``sanchari predict`` reports it), ``None`` before."""
        return self._first_result

    @property
    def metadata(self) -> ModelMetadata:
        """The model's metadata (bands, normalisation, GSD, recommended threshold)."""
        return self._metadata

    @property
    def config(self) -> InferenceConfig:
        return self._config

    @property
    def runner(self) -> Runner:
        return self._runner

    @property
    def batch_size(self) -> int:
        return self._config.batch_size or default_batch_size(self._runner.device)

    def prepare(
        self, image: np.ndarray, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(model input, valid mask)`` of raw pixels: checked, normalised, no-data filled.

        Pixels where ``valid`` is False (or any band is NaN/inf) are fed to the model as the
        local mean of the valid ones, so no edge appears where the data ends.
        """
        bands = self._metadata.bands
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
        x = normalise(image, self._metadata)
        finite = np.isfinite(x).all(axis=0)
        mask = finite if valid is None else valid & finite
        return fill_smooth(x, mask), mask

    def predict_stream(
        self,
        shape: tuple[int, int],
        read: RawReader,
        write: RegionWriter,
        progress: ProgressFn | None = None,
        blocks: RemoteBlocks | None = None,
    ) -> int:
        """Stream a ``shape`` image through the model; returns the number of patches.

        ``read`` serves raw pixels of windows inside the image; ``write`` receives the final
        probabilities (0..1, no-data not yet zeroed: the caller knows its mask) block by block.
        ``blocks`` runs the blocks elsewhere (a cluster; ``read`` must then be picklable and
        readable there), with the same output.
        """
        remote = None if blocks is None else blocks(read, shape)
        return self._stream(shape, self.region_reader(read, shape), write, progress, remote)

    def region_reader(self, read: RawReader, shape: tuple[int, int]) -> RegionReader:
        """The model input of any window of a ``shape`` grid, from raw pixels inside it, with the
        valid mask as one more channel (patches without a valid pixel skip the model).

        The one way a block's input is made, here or on a cluster worker.
        """

        def prepared(rows: slice, cols: slice) -> np.ndarray:
            return _with_valid(*self.prepare(*read(rows, cols)))

        return reflect_reader(prepared, *shape)

    def predict_block(self, read: RawReader, shape: tuple[int, int], block: Block) -> np.ndarray:
        """One block's :func:`block_numerator`, reading its own window (a cluster worker's task)."""
        region = self.region_reader(read, shape)(block.rows, block.cols)
        weight = blend_window(self._config.patch_size, BLEND)
        return block_numerator(region, block.origins, self._model, self.batch_size, weight)

    def _stream(
        self,
        shape: tuple[int, int],
        region: RegionReader,
        write: RegionWriter,
        progress: ProgressFn | None,
        blocks: BlockPredictor | None = None,
    ) -> int:
        def clipped(row: int, col: int, prob: np.ndarray) -> None:
            write(row, col, np.clip(prob, 0.0, 1.0, out=prob))

        cfg = self._config
        with _tqdm_progress(cfg.progress and progress is None) as bar:
            return stream_predict(
                shape,
                region,
                clipped,
                self._model,
                patch_size=cfg.patch_size,
                stride=cfg.stride or cfg.patch_size,  # set in InferenceConfig
                batch_size=self.batch_size,
                margin=cfg.edge_margin,
                block=cfg.stream_window,
                blend=BLEND,
                progress=progress or bar,
                blocks=blocks,
            )

    def predict(
        self,
        image: np.ndarray,
        valid: np.ndarray | None = None,
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Road probability ``(H, W)`` float32 in [0, 1] for a ``(C, H, W)`` raw-pixel image.

        Bands must be in ``metadata.bands`` order. Invalid pixels (``valid`` False, or any band
        NaN/inf) are filled (:meth:`prepare`) and get probability 0, as does everything within
        ``nodata_margin_m`` of them. The same streaming as a raster, over an array.
        """
        x, mask = self.prepare(image, valid)
        height, width = mask.shape
        out = np.empty((height, width), np.float32)

        def write(row: int, col: int, prob: np.ndarray) -> None:
            out[row : row + prob.shape[0], col : col + prob.shape[1]] = prob

        stacked = _with_valid(x, mask)
        region = reflect_reader(lambda r, c: stacked[:, r, c], height, width)
        self._stream((height, width), region, write, progress)
        out[~shrink_valid(mask, self._config.nodata_margin_m / self._metadata.gsd_m)] = 0.0
        return out


def _with_valid(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(C + 1, h, w)``: the model input and the valid mask (0/1) as its last channel."""
    return np.concatenate([x, valid[None].astype(x.dtype)])
