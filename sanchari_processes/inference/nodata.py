"""No-data handling around the model: fill so no edge appears, then keep clear of the edge.

A CNN reads any sharp step as a possible road edge. Filling no-data with a constant draws such a
step along every alpha or nodata boundary (a false centreline ran ~250 px along the edge of a
half-transparent GeoTIFF), and copying the nearest valid pixel draws streaks across it that look
like roads. So no-data takes the *local mean colour* of the data around it (normalised
convolution: a Gaussian-weighted mean over valid pixels only, fading into coarser means further
from the data), which has no edge and no streaks,
and road probability within a small margin of no-data is dropped, as the model's view there is
half invented.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: Gaussian sigma (pixels) of the local mean that fills no-data.
FILL_SIGMA_PX = 16.0
#: The coarser local mean is taken on an image this many times smaller (sigma ×8 in effect).
COARSE_FACTOR = 8
#: Share of the Gaussian's weight on valid pixels above which a local mean is fully trusted.
_TRUSTED_WEIGHT = 0.1


def fill_smooth(image: np.ndarray, valid: np.ndarray, sigma: float = FILL_SIGMA_PX) -> np.ndarray:
    """``(C, H, W)`` image with invalid pixels set to the local mean of the valid ones.

    Next to the data that is the mean within ~``sigma`` px; further in, it fades into the mean
    within ~8 × ``sigma`` px, then into the mean of all valid pixels: smooth at every distance
    (copying the nearest value outward drew straight streaks a model reads as roads).
    Returned unchanged when every pixel is valid; all zeros when none is (nothing to copy).
    """
    if valid.all():
        return image
    if not valid.any():
        return np.zeros_like(image)
    out = image.copy()
    hole = ~valid
    fine, fine_trust = _local_mean(image, valid, sigma)
    coarse, coarse_trust = _coarse_mean(image, valid, sigma)
    overall = image[:, valid].mean(axis=1)[:, None, None]
    coarse = coarse_trust * coarse + (1.0 - coarse_trust) * overall
    filled = fine_trust * fine + (1.0 - fine_trust) * coarse
    out[:, hole] = filled[:, hole]
    return out


def _local_mean(
    image: np.ndarray, valid: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: the Gaussian-weighted mean of valid pixels, and how far it can
    be trusted (0..1, from the share of the weight that fell on valid pixels)."""
    weight = valid.astype(np.float32)
    den = ndimage.gaussian_filter(weight, sigma, mode="reflect")
    mean = np.empty(image.shape, np.float32)
    for band, data in zip(mean, image, strict=True):
        num = ndimage.gaussian_filter(np.where(valid, data, 0.0), sigma, mode="reflect")
        band[...] = num / np.maximum(den, 1e-6)
    return mean, np.clip(den / _TRUSTED_WEIGHT, 0.0, 1.0)


def _coarse_mean(
    image: np.ndarray, valid: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_local_mean` at ``COARSE_FACTOR`` × ``sigma``, computed on an image shrunk by
    block means (cheap for any block size) and zoomed back bilinearly."""
    from skimage.measure import block_reduce
    from skimage.transform import resize

    factor = (COARSE_FACTOR, COARSE_FACTOR)
    weight = block_reduce(valid.astype(np.float32), factor, np.mean)
    sums = np.stack([block_reduce(np.where(valid, b, 0.0), factor, np.mean) for b in image])
    seen = weight > 0
    small = np.where(seen, sums / np.maximum(weight, 1e-6), 0.0).astype(np.float32)
    mean, trust = _local_mean(small, seen, sigma)
    mean[:, seen] = small[:, seen]  # a partly valid block keeps its own mean
    shape = valid.shape
    up = np.stack([resize(band, shape, order=1, mode="edge", anti_aliasing=False) for band in mean])
    return up.astype(np.float32), resize(trust, shape, order=1, mode="edge", anti_aliasing=False)


def shrink_valid(valid: np.ndarray, margin_px: float) -> np.ndarray:
    """``valid`` minus every pixel within ``margin_px`` of an invalid one (image borders are
    not no-data: only real invalid pixels shrink it)."""
    if valid.all() or margin_px <= 0:
        return valid
    distance = ndimage.distance_transform_edt(valid)
    return distance > math.ceil(margin_px)
