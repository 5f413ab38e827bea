"""Probability → clean binary road mask → one-pixel skeleton.

The clean-up exists for the skeleton's sake: a hole inside a wide road becomes a false loop,
speckle becomes short isolated lines, and ragged borders become spurs. Filling small holes and
removing small objects work on connected components, closing smooths the outline. All of it
runs on one tile's window at a time (see :mod:`.tiles`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import closing, disk, remove_small_objects, skeletonize

from sanchari_processes.vectorize.params import PixelParams


def threshold_mask(
    prob: np.ndarray, threshold: float, valid: np.ndarray | None = None
) -> np.ndarray:
    """``prob > threshold`` where ``valid`` (NaN counts as no road)."""
    with np.errstate(invalid="ignore"):
        mask = np.asarray(prob) > threshold
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    return mask


def fill_enclosed_holes(mask: np.ndarray, max_size: int) -> np.ndarray:
    """Fill holes of at most ``max_size`` pixels that the mask encloses.

    Unlike ``skimage.morphology.remove_small_holes`` a background region touching the array's
    edge is never a hole: between two roads meeting near the raster edge lies open ground, and
    filling it would turn the junction into a blob whose skeleton runs along the edge.
    """
    labels, count = ndi.label(~mask)
    if count == 0:
        return mask.copy()
    small = np.bincount(labels.ravel()) <= max_size
    small[0] = False
    small[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    return mask | small[labels]


def drop_wide_areas(mask: np.ndarray, max_half_width: float) -> np.ndarray:
    """Remove the parts of ``mask`` wider than ``2 * max_half_width`` pixels.

    Thinning a filled area takes one pass per pixel of its half-width over the whole window, so
    a blob a model paints over a field or a car park (or an untrained model's all-road output)
    would stall the skeleton for minutes, and its skeleton is no road anyway. Two distance
    transforms (linear time) find every pixel within ``max_half_width`` of a point that deep
    inside the mask: the wide parts, with a margin (``sqrt(2)`` times) that also takes their
    corners, which would otherwise be left as stubs. Roads leading into them are kept.
    """
    depth = ndi.distance_transform_edt(mask)
    core = depth > max_half_width
    if not core.any():
        return mask
    reach = max_half_width * np.sqrt(2.0) + 2.0
    return mask & (ndi.distance_transform_edt(~core) > reach)


def clean_mask(mask: np.ndarray, params: PixelParams) -> np.ndarray:
    """Fill small holes, drop small objects, close the outline, fill what closing enclosed,
    and drop areas too wide to be a road."""
    out = np.asarray(mask, dtype=bool)
    if not out.any():
        return out.copy()
    if params.fill_holes_px > 0:
        out = fill_enclosed_holes(out, params.fill_holes_px)
    if params.min_object_px > 0:
        out = remove_small_objects(out, max_size=params.min_object_px, connectivity=2)
    if params.closing_radius_px > 0 and out.any():
        out = closing(out, disk(params.closing_radius_px))
        if params.fill_holes_px > 0:
            out = fill_enclosed_holes(out, params.fill_holes_px)
    if params.max_half_width_px > 0 and out.any():
        out = drop_wide_areas(out, params.max_half_width_px)
    return out


def skeleton_with_context(mask: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Skeletonize ``mask`` after mirroring it by ``pads`` (top, bottom, left, right) pixels.

    Mirroring continues every road across the raster edge, so a road that leaves the image keeps
    its centreline right up to the edge instead of ending half a road width short of it (or in a
    fork towards the corners). The returned skeleton keeps the padding.
    """
    top, bottom, left, right = pads
    if any(pads):
        widths = ((top, bottom), (left, right))
        if min(mask.shape) > 1:
            mask = np.pad(mask, widths, mode="reflect")
        else:
            mask = np.pad(mask, widths, mode="symmetric")
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    return skeletonize(mask)
