"""Sliding window: exact reconstruction (no seams), coverage, patch counts, progress."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sanchari_processes.inference.sliding import (
    WEIGHT_FLOOR,
    Block,
    blend_window,
    block_numerator,
    count_patches,
    plan_axis,
    reflect_index,
    reflect_reader,
    sliding_window_predict,
    stream_predict,
)

P, S = 64, 32


def channel0(patches: np.ndarray) -> np.ndarray:
    """A 'model' whose output is its input, so any misplaced or mis-weighted patch shows."""
    return patches[:, 0].copy()


@pytest.mark.parametrize(
    "size",
    [(1, 1), (1, 5), (3, 200), (10, 13), (64, 64), (63, 65), (100, 150), (128, 96)],
)
@pytest.mark.parametrize("blend", ["gaussian", "hann"])
@pytest.mark.parametrize("stride", [S, 48, P])
def test_identity_model_is_reproduced_exactly(
    size: tuple[int, int], blend: str, stride: int
) -> None:
    image = np.random.default_rng(1).random((2, *size), dtype=np.float32)
    out = sliding_window_predict(
        image,
        channel0,
        patch_size=P,
        stride=stride,
        batch_size=3,
        blend=blend,  # type: ignore[arg-type]
    )
    assert out.shape == size and out.dtype == np.float32
    np.testing.assert_allclose(out, image[0], atol=1e-6, rtol=0)


def test_constant_input_gives_constant_output() -> None:
    image = np.full((3, 90, 70), 0.3, np.float32)
    out = sliding_window_predict(image, lambda p: np.tanh(p.sum(1)), patch_size=P, stride=S)
    np.testing.assert_allclose(out, np.tanh(0.9), atol=1e-6)


@pytest.mark.parametrize(
    ("length", "margin", "n_patches"),
    [(64, None, 3), (10, None, 2), (100, None, 5), (64, 0, 1), (10, 0, 1), (65, 0, 2)],
)
def test_plan_axis_counts(length: int, margin: int | None, n_patches: int) -> None:
    plan = plan_axis(length, P, S, margin)
    assert len(plan.starts) == n_patches


@pytest.mark.parametrize("length", [1, 7, 31, 64, 65, 100, 257])
@pytest.mark.parametrize("stride", [16, 32, 64])
def test_plan_axis_covers_borders_like_interior(length: int, stride: int) -> None:
    plan = plan_axis(length, P, stride)
    padded = plan.pad_before + length + plan.pad_after
    assert plan.starts[-1] + P == padded
    assert plan.pad_before >= P - stride and plan.pad_after >= P - stride
    assert abs(plan.pad_before - plan.pad_after) <= 1  # slack split evenly
    coverage = np.zeros(padded, int)
    for s in plan.starts:
        coverage[s : s + P] += 1
    image_cov = coverage[plan.pad_before : plan.pad_before + length]
    assert (image_cov == P // stride).all()  # every image pixel, border or not, same overlap


@pytest.mark.parametrize(("size", "batch"), [((64, 64), 4), ((100, 150), 4), ((10, 13), 3)])
def test_progress_and_batches(size: tuple[int, int], batch: int) -> None:
    calls: list[tuple[int, int]] = []
    seen: list[int] = []

    def predict(p: np.ndarray) -> np.ndarray:
        assert p.shape[1:] == (1, P, P) and p.dtype == np.float32
        seen.append(len(p))
        return p[:, 0]

    sliding_window_predict(
        np.zeros((1, *size), np.float32),
        predict,
        patch_size=P,
        stride=S,
        batch_size=batch,
        progress=lambda done, total: calls.append((done, total)),
    )
    total = len(plan_axis(size[0], P, S).starts) * len(plan_axis(size[1], P, S).starts)
    assert sum(seen) == total and max(seen) <= batch
    assert len(calls) == math.ceil(total / batch)
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_expected_patch_count_for_square_image() -> None:
    calls: list[tuple[int, int]] = []
    sliding_window_predict(
        np.zeros((1, 64, 64), np.float32),
        channel0,
        patch_size=P,
        stride=S,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (9, 9)  # 3 x 3: the image plus a half-patch reflect border


@pytest.mark.parametrize("blend", ["gaussian", "hann"])
def test_blend_window(blend: str) -> None:
    w = blend_window(P, blend)  # type: ignore[arg-type]
    assert w.shape == (P, P) and w.dtype == np.float32
    assert w.max() == pytest.approx(1.0) and w.min() >= WEIGHT_FLOOR
    np.testing.assert_array_equal(w, w[::-1, ::-1])
    np.testing.assert_array_equal(w, w.T)
    assert w[P // 2, P // 2] > w[P // 2, 4] > w[0, 0]


def test_rejects_bad_arguments() -> None:
    image = np.zeros((1, 20, 20), np.float32)
    with pytest.raises(ValueError, match="predict_batch returned shape"):
        sliding_window_predict(image, lambda p: p, patch_size=P, stride=S)
    with pytest.raises(ValueError, match="stride"):
        sliding_window_predict(image, channel0, patch_size=P, stride=P + 1)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        sliding_window_predict(image[0], channel0, patch_size=P, stride=S)
    with pytest.raises(ValueError, match="unknown blend"):
        sliding_window_predict(image, channel0, patch_size=P, stride=S, blend="box")  # type: ignore[arg-type]


def _nonlinear(patches: np.ndarray) -> np.ndarray:
    """A 'model' whose output depends on the whole patch, so blending errors cannot cancel."""
    return np.tanh(patches[:, 0] + patches.mean(axis=(1, 2, 3))[:, None, None])


@pytest.mark.parametrize("size", [(1, 1), (40, 300), (130, 97), (200, 200)])
@pytest.mark.parametrize(("stride", "margin"), [(S, 0), (S, None), (48, 16), (P, 0)])
@pytest.mark.parametrize("block", [1, 64, 100, 1000])
def test_streamed_blocks_equal_the_whole_image_and_predict_each_patch_once(
    size: tuple[int, int], stride: int, margin: int | None, block: int
) -> None:
    image = np.random.default_rng(2).random((2, *size), dtype=np.float32)
    whole = sliding_window_predict(image, _nonlinear, patch_size=P, stride=stride, margin=margin)
    out = np.full(size, np.nan, np.float32)
    writes: list[tuple[int, int]] = []
    seen: list[int] = []

    def write(row: int, col: int, prob: np.ndarray) -> None:
        assert np.isnan(out[row : row + prob.shape[0], col : col + prob.shape[1]]).all()
        out[row : row + prob.shape[0], col : col + prob.shape[1]] = prob
        writes.append((row, col))

    def predict(patches: np.ndarray) -> np.ndarray:
        seen.append(len(patches))
        return _nonlinear(patches)

    n = stream_predict(
        size,
        reflect_reader(lambda r, c: image[:, r, c], *size),
        write,
        predict,
        patch_size=P,
        stride=stride,
        batch_size=3,
        margin=margin,
        block=block,
    )
    assert n == sum(seen) == count_patches(size, P, stride, margin)
    np.testing.assert_allclose(out, whole, atol=1e-5, rtol=0)
    assert writes == sorted(writes)  # row-major block order


def test_no_margin_covers_an_image_with_the_fewest_patches() -> None:
    # 1024 px at 512/256: three patches a side, as a loop without padding would use.
    assert count_patches((1024, 1024), 512, 256, margin=0) == 9
    assert count_patches((1024, 1024), 512, 256) == 25
    assert count_patches((4096, 4096), 512, 384, margin=0) == 121


@pytest.mark.parametrize("length", [1, 2, 5, 17])
def test_reflect_reader_matches_numpy_reflect_pad(length: int) -> None:
    image = np.arange(3 * length * 7, dtype=np.float32).reshape(3, length, 7)
    padded = np.pad(image, ((0, 0), (40, 40), (40, 40)), mode="reflect")
    reads: list[tuple[slice, slice]] = []

    def inside(r: slice, c: slice) -> np.ndarray:
        reads.append((r, c))
        return image[:, r, c]

    read = reflect_reader(inside, length, 7)
    for rows, cols in [
        ((-5, 3), (-2, 9)),
        ((0, length), (0, 7)),
        ((length - 2, length + 30), (4, 30)),
    ]:
        got = read(slice(*rows), slice(*cols))
        want = padded[:, rows[0] + 40 : rows[1] + 40, cols[0] + 40 : cols[1] + 40]
        np.testing.assert_array_equal(got, want)
    for r, c in reads:
        assert 0 <= r.start < r.stop <= length and 0 <= c.start < c.stop <= 7
    assert reflect_index(np.array([-1, 0, 3, 4]), 4).tolist() == [1, 0, 3, 2]


def test_blocks_run_elsewhere_give_identical_floats_and_progress_per_block() -> None:
    size = (150, 130)
    image = np.random.default_rng(4).random((2, *size), dtype=np.float32)
    read = reflect_reader(lambda r, c: image[:, r, c], *size)
    weight = blend_window(P)
    sent: list[Block] = []

    def elsewhere(work):  # as a worker does: read the block's window, blend its patches
        for block in work:
            sent.append(block)
            region = read(block.rows, block.cols)
            yield block_numerator(region, block.origins, _nonlinear, 3, weight)

    runs, calls = {}, {}
    for name, blocks in (("local", None), ("elsewhere", elsewhere)):
        out = np.zeros(size, np.float32)
        calls[name] = []

        def write(row: int, col: int, prob: np.ndarray, out: np.ndarray = out) -> None:
            out[row : row + prob.shape[0], col : col + prob.shape[1]] = prob

        stream_predict(
            size,
            read,
            write,
            _nonlinear,
            patch_size=P,
            stride=S,
            batch_size=3,
            block=64,
            progress=lambda done, _, seen=calls[name]: seen.append(done),
            blocks=blocks,
        )
        runs[name] = out
    assert np.array_equal(runs["elsewhere"], runs["local"])
    assert calls["elsewhere"] == list(itertools.accumulate(len(b.origins) for b in sent))
    assert calls["local"][-1] == calls["elsewhere"][-1] == count_patches(size, P, S)
