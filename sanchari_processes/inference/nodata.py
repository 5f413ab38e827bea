"""No-data handling around the model: fill so no edge appears, then keep clear of the edge.

A CNN reads any sharp step as a possible road edge. Filling no-data with a constant draws such a
step along every alpha or nodata boundary (a false centreline ran ~250 px along the edge of a
half-transparent GeoTIFF), and copying the nearest valid pixel draws streaks across it that look
like roads. So no-data takes the *local mean colour* of the data around it (normalised
convolution: a Gaussian-weighted mean over valid pixels only), which has no edge and no streaks,
and road probability within a small margin of no-data is dropped, as the model's view there is
half invented.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: Gaussian sigma (pixels) of the local mean that fills no-data.
FILL_SIGMA_PX = 16.0
#: Below this share of valid weight the local mean is not trusted; the nearest one is used.
_MIN_WEIGHT = 1e-3


def fill_smooth(image: np.ndarray, valid: np.ndarray, sigma: float = FILL_SIGMA_PX) -> np.ndarray:
    """``(C, H, W)`` image with invalid pixels set to the local mean of the valid ones.

    Returned unchanged when every pixel is valid; all zeros when none is (nothing to copy).
    """
    if valid.all():
        return image
    if not valid.any():
        return np.zeros_like(image)
    weight = valid.astype(np.float32)
    den = ndimage.gaussian_filter(weight, sigma, mode="reflect")
    out = image.copy()
    trusted = den > _MIN_WEIGHT
    for band, data in zip(out, image, strict=True):
        num = ndimage.gaussian_filter(np.where(valid, data, 0.0), sigma, mode="reflect")
        band[~valid] = num[~valid] / np.maximum(den[~valid], _MIN_WEIGHT)
    far = ~valid & ~trusted
    if far.any():  # deep inside large no-data areas: continue the smooth fill outward
        _, (rows, cols) = ndimage.distance_transform_edt(far, return_indices=True)
        out[:, far] = out[:, rows[far], cols[far]]
    return out


def shrink_valid(valid: np.ndarray, margin_px: float) -> np.ndarray:
    """``valid`` minus every pixel within ``margin_px`` of an invalid one (image borders are
    not no-data: only real invalid pixels shrink it)."""
    if valid.all() or margin_px <= 0:
        return valid
    distance = ndimage.distance_transform_edt(valid)
    return distance > math.ceil(margin_px)
