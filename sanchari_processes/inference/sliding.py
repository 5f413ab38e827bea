"""Sliding-window prediction with smooth blending (nnU-Net style), streamed, pure NumPy.

A CNN is least reliable near its patch borders, so patches overlap and each prediction is
weighted by a window that peaks at the patch centre: ``sum(w * p) / sum(w)``. The patches lie on
one grid over the whole image, whose edges are reflect-padded by ``margin`` (plus the slack
needed to fit a whole number of strides), so images smaller than a patch work too.

Large images stream: :func:`stream_predict` walks the grid in blocks of patches and keeps only
the overlap that spills into the next blocks (``patch - stride`` pixels), so every patch is
predicted exactly once, the context a block needs is the overlap it shares with its
neighbours, and memory depends on the block size and the image width, not on its area. The
model is hidden behind ``predict_batch``, keeping this module free of torch and testable with
plain functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

BlendMode = Literal["gaussian", "hann"]
#: Smallest weight relative to the centre, so corners still count and sum(w) is never 0.
WEIGHT_FLOOR = 1e-3

#: ``read(rows, cols)``: the ``(C, h, w)`` float32 model input for a window of the grid that may
#: reach past its edges (negative or too-large indices); see :func:`reflect_reader`.
RegionReader = Callable[[slice, slice], np.ndarray]
#: ``write(row, col, prob)``: final probabilities for a window inside the grid.
RegionWriter = Callable[[int, int, np.ndarray], None]
PredictBatch = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]
#: Runs blocks elsewhere (e.g. on a cluster): given the blocks in order, yields each block's
#: :func:`block_numerator` in the same order; it may start blocks ahead of the one it yields.
BlockPredictor = Callable[[Iterable["Block"]], Iterator[np.ndarray]]


@dataclass(frozen=True)
class Block:
    """One block of the patch grid: the window it reads and its patch origins in that window.

    Small and picklable on purpose: a cluster worker gets this, not the pixels, and reads the
    window itself. ``rows``/``cols`` are in grid coordinates and may reach past its edges.
    """

    rows: slice
    cols: slice
    #: Patch origins relative to the window, in the order they are blended.
    origins: tuple[tuple[int, int], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.stop - self.rows.start, self.cols.stop - self.cols.start)


@dataclass(frozen=True)
class AxisPlan:
    """Padding and patch start offsets (in padded coordinates) along one axis."""

    pad_before: int
    pad_after: int
    starts: tuple[int, ...]

    @property
    def grid_starts(self) -> tuple[int, ...]:
        """Patch starts in image coordinates (the first is negative when the edge is padded)."""
        return tuple(s - self.pad_before for s in self.starts)


def plan_axis(length: int, patch_size: int, stride: int, margin: int | None = None) -> AxisPlan:
    """Place patches along an axis of ``length`` pixels.

    ``margin`` (default ``patch_size - stride``) is the minimum padding on each side: with it,
    the first and last pixels are covered by as many patches as interior ones. Any slack needed
    to fit a whole number of strides is split evenly between both sides.
    """
    if length <= 0:
        raise ValueError("length must be positive")
    if patch_size <= 0 or not 0 < stride <= patch_size:
        raise ValueError("need 0 < stride <= patch_size")
    margin = patch_size - stride if margin is None else margin
    if margin < 0:
        raise ValueError("margin must be >= 0")
    needed = length + 2 * margin
    n = max(1, math.ceil((needed - patch_size) / stride) + 1)
    padded = (n - 1) * stride + patch_size
    slack = padded - length - 2 * margin
    pad_before = margin + slack // 2
    return AxisPlan(pad_before, padded - length - pad_before, tuple(i * stride for i in range(n)))


def count_patches(
    shape: tuple[int, int], patch_size: int, stride: int, margin: int | None = None
) -> int:
    """How many patches (forward passes without TTA) an image of ``shape`` takes."""
    rows = plan_axis(shape[0], patch_size, stride, margin)
    cols = plan_axis(shape[1], patch_size, stride, margin)
    return len(rows.starts) * len(cols.starts)


def blend_window(patch_size: int, blend: BlendMode = "gaussian") -> np.ndarray:
    """``(patch, patch)`` float32 weights peaking at 1 in the centre, floored at WEIGHT_FLOOR.

    Gaussian uses sigma = patch / 8 (nnU-Net). Hann drops the zero end points of a window two
    samples longer, so no pixel of the patch is ignored.
    """
    if blend == "gaussian":
        centre = (patch_size - 1) / 2.0
        w1 = np.exp(-0.5 * ((np.arange(patch_size) - centre) / (patch_size / 8.0)) ** 2)
    elif blend == "hann":
        w1 = np.hanning(patch_size + 2)[1:-1]
    else:
        raise ValueError(f"unknown blend {blend!r}; use 'gaussian' or 'hann'")
    w = np.outer(w1, w1)
    return np.maximum(w / w.max(), WEIGHT_FLOOR).astype(np.float32)


def reflect_index(index: np.ndarray, length: int) -> np.ndarray:
    """Map indices outside ``0..length-1`` into it by reflection (NumPy's ``reflect`` pad)."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    folded = np.mod(index, period)
    return np.where(folded >= length, period - folded, folded)


def reflect_reader(
    read_inside: Callable[[slice, slice], np.ndarray], height: int, width: int
) -> RegionReader:
    """A :data:`RegionReader` over a ``height × width`` image from one that reads inside it.

    Windows reaching past the edges are served by reading the smallest inside window that holds
    their reflection, so a streamed block at the border sees what a whole-image pad would give.
    """

    def read(rows: slice, cols: slice) -> np.ndarray:
        r = reflect_index(np.arange(rows.start, rows.stop), height)
        c = reflect_index(np.arange(cols.start, cols.stop), width)
        r0, c0 = int(r.min()), int(c.min())
        inside = read_inside(slice(r0, int(r.max()) + 1), slice(c0, int(c.max()) + 1))
        if r0 == rows.start and c0 == cols.start and inside.shape[-2:] == (len(r), len(c)):
            return inside
        return inside[..., r - r0, :][..., c - c0]

    return read


@dataclass(frozen=True)
class _Span:
    """One block along an axis: its patch starts, the pixels it reads and those it finalises."""

    starts: tuple[int, ...]
    begin: int  # first pixel of the block's first patch
    done: int  # pixels before this are final once the block is predicted
    end: int  # one past the last pixel of its last patch


def _spans(starts: tuple[int, ...], patch: int, per_block: int) -> list[_Span]:
    spans = []
    for i in range(0, len(starts), per_block):
        own = starts[i : i + per_block]
        end = own[-1] + patch
        done = starts[i + per_block] if i + per_block < len(starts) else end
        spans.append(_Span(own, own[0], done, end))
    return spans


def stream_predict(
    shape: tuple[int, int],
    read: RegionReader,
    write: RegionWriter,
    predict_batch: PredictBatch,
    *,
    patch_size: int = 512,
    stride: int = 256,
    batch_size: int = 1,
    margin: int | None = None,
    block: int = 2048,
    blend: BlendMode = "gaussian",
    progress: Progress | None = None,
    blocks: BlockPredictor | None = None,
) -> int:
    """Predict a ``height × width`` image patch by patch, block by block; returns the patches.

    ``read`` gives the normalised ``(C, h, w)`` input of any window of the padded grid (see
    :func:`reflect_reader`); ``write`` receives each final ``(h, w)`` probability window inside
    the image, in row-major block order. ``predict_batch`` maps ``(N, C, p, p)`` float32 patches
    to ``(N, p, p)`` values. ``block`` is the side of a block in pixels (rounded down to whole
    strides, at least one patch). The result equals a whole-image blend up to float rounding,
    because every pixel sums the same patches with the same weights whatever the blocking.
    Each block's patches are blended on their own (:func:`block_numerator`), then added to what
    its neighbours spilled into it. With ``blocks`` that per-block blend runs there (each block
    reading its own window) and only the numerators come back: the output is identical.
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    height, width = shape
    plan_y = plan_axis(height, patch_size, stride, margin)
    plan_x = plan_axis(width, patch_size, stride, margin)
    per_block = max(1, block // stride)
    rows = _spans(plan_y.grid_starts, patch_size, per_block)
    cols = _spans(plan_x.grid_starts, patch_size, per_block)
    weight = blend_window(patch_size, blend)
    tally = _Tally(len(plan_y.starts) * len(plan_x.starts), progress)
    work = (_block(ry, cx) for ry in rows for cx in cols)
    if blocks is None:
        numerators = _local_blocks(work, read, predict_batch, batch_size, weight, tally.add)
    else:
        numerators = iter(blocks(work))
    denominators = _Denominators(weight)
    x0 = cols[0].begin
    spill = patch_size - stride
    # What the previous band of blocks added to the first ``spill`` rows of the next one.
    below = np.zeros((2, spill, cols[-1].end - x0), np.float32)
    for ry in rows:
        beside = np.zeros((2, ry.end - ry.begin, spill), np.float32)
        next_below = np.zeros_like(below)
        for cx in cols:
            acc = np.zeros((2, ry.end - ry.begin, cx.end - cx.begin), np.float32)
            keep = (cx.end if cx is cols[-1] else cx.done) - cx.begin
            acc[:, :spill, :keep] += below[:, :, cx.begin - x0 : cx.begin - x0 + keep]
            acc[:, :, :spill] += beside
            this = _block(ry, cx)
            acc[0] += _checked(next(numerators), this)
            acc[1] += denominators(this)
            if blocks is not None:
                tally.add(len(this.origins))
            beside = acc[:, :, cx.done - cx.begin :].copy()
            height_done = ry.done - ry.begin
            if ry.done < ry.end:
                next_below[:, :, cx.begin - x0 : cx.begin - x0 + keep] = acc[:, height_done:, :keep]
            _write_final(acc[:, :height_done, :keep], ry.begin, cx.begin, shape, write)
        below = next_below
    return tally.total


@dataclass
class _Tally:
    """Patches done so far, reported to ``progress`` as they complete."""

    total: int
    progress: Progress | None
    done: int = 0

    def add(self, patches: int) -> None:
        self.done += patches
        if self.progress is not None:
            self.progress(self.done, self.total)


class _Denominators:
    """Each block's sum of patch weights: deterministic, so computed here, not shipped back.

    Blocks share a few layouts of patches (a band's first, inner and last blocks are the same
    in every band but the last), so a few sums are kept and reused.
    """

    KEEP = 3

    def __init__(self, weight: np.ndarray) -> None:
        self._weight = weight
        self._seen: dict[tuple, np.ndarray] = {}

    def __call__(self, block: Block) -> np.ndarray:
        key = (block.shape, block.origins)
        if key not in self._seen:
            if len(self._seen) >= self.KEEP:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = weight_sum(block.shape, block.origins, self._weight)
        return self._seen[key]


def weight_sum(
    shape: tuple[int, int], origins: tuple[tuple[int, int], ...], weight: np.ndarray
) -> np.ndarray:
    """``(h, w)`` sum of the blend weights of the patches at ``origins``."""
    p = weight.shape[0]
    out = np.zeros(shape, np.float32)
    for y, x in origins:
        out[y : y + p, x : x + p] += weight
    return out


def _checked(numerator: np.ndarray, block: Block) -> np.ndarray:
    if numerator.shape != block.shape:
        raise ValueError(f"a block's numerator has shape {numerator.shape}, expected {block.shape}")
    return numerator


def _block(ry: _Span, cx: _Span) -> Block:
    """The block at the crossing of a row span and a column span."""
    origins = tuple((y - ry.begin, x - cx.begin) for y in ry.starts for x in cx.starts)
    return Block(slice(ry.begin, ry.end), slice(cx.begin, cx.end), origins)


def _local_blocks(
    work: Iterable[Block],
    read: RegionReader,
    predict_batch: PredictBatch,
    batch_size: int,
    weight: np.ndarray,
    on_chunk: Callable[[int], None],
) -> Iterator[np.ndarray]:
    """Each block's numerator, computed here (lazily, one block at a time)."""
    for block in work:
        region = read(block.rows, block.cols)
        yield block_numerator(region, block.origins, predict_batch, batch_size, weight, on_chunk)


def block_numerator(
    region: np.ndarray,
    origins: Sequence[tuple[int, int]],
    predict_batch: PredictBatch,
    batch_size: int,
    weight: np.ndarray,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``(h, w)`` float32 sum of ``weight * prediction`` over a block's patches, in order.

    The one blend of a block, whether it runs here or on a cluster worker, so both give
    identical floats. ``on_chunk(n)`` follows each chunk of ``n`` patches.
    """
    p = weight.shape[0]
    out = np.zeros(region.shape[-2:], np.float32)
    position = 0
    for chunk in predict_patches(region, origins, predict_batch, batch_size, p):
        for pred in chunk:
            y, x = origins[position]
            out[y : y + p, x : x + p] += weight * pred
            position += 1
        if on_chunk is not None:
            on_chunk(len(chunk))
    return out


def predict_patches(
    region: np.ndarray,
    origins: Sequence[tuple[int, int]],
    predict_batch: PredictBatch,
    batch_size: int,
    patch: int,
) -> Iterator[np.ndarray]:
    """The ``(n, p, p)`` predictions of the patches at ``origins`` of ``region``, chunk by
    chunk of ``batch_size`` (lazily, so progress can follow each chunk)."""
    for first in range(0, len(origins), batch_size):
        chunk = origins[first : first + batch_size]
        patches = np.stack([region[:, y : y + patch, x : x + patch] for y, x in chunk])
        preds = np.asarray(predict_batch(np.ascontiguousarray(patches, np.float32)), np.float32)
        if preds.shape != (len(chunk), patch, patch):
            raise ValueError(
                f"predict_batch returned shape {preds.shape}, expected {(len(chunk), patch, patch)}"
            )
        yield preds


def _write_final(
    acc: np.ndarray, row: int, col: int, shape: tuple[int, int], write: RegionWriter
) -> None:
    """Divide out the weights of a final window and hand over its part inside the image."""
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + acc.shape[1], shape[0]), min(col + acc.shape[2], shape[1])
    if r1 <= r0 or c1 <= c0:
        return
    num = acc[0, r0 - row : r1 - row, c0 - col : c1 - col]
    den = acc[1, r0 - row : r1 - row, c0 - col : c1 - col]
    write(r0, c0, num / den)


def sliding_window_predict(
    image: np.ndarray,
    predict_batch: PredictBatch,
    *,
    patch_size: int = 512,
    stride: int = 256,
    batch_size: int = 1,
    blend: BlendMode = "gaussian",
    progress: Progress | None = None,
    margin: int | None = None,
    block: int | None = None,
) -> np.ndarray:
    """Predict a ``(C, H, W)`` normalised image patch by patch; returns ``(H, W)`` float32.

    The in-memory form of :func:`stream_predict` (same grid, same blend; ``block`` defaults to
    the whole image). ``margin`` is the minimum reflect padding per side (default
    ``patch_size - stride``, see :func:`plan_axis`).
    """
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {image.shape}")
    _, height, width = image.shape
    data = np.asarray(image, dtype=np.float32)
    out = np.empty((height, width), np.float32)

    def write(row: int, col: int, prob: np.ndarray) -> None:
        out[row : row + prob.shape[0], col : col + prob.shape[1]] = prob

    stream_predict(
        (height, width),
        reflect_reader(lambda r, c: data[:, r, c], height, width),
        write,
        predict_batch,
        patch_size=patch_size,
        stride=stride,
        batch_size=batch_size,
        margin=margin,
        block=block or max(height, width) + 2 * patch_size,
        blend=blend,
        progress=progress,
    )
    return out
