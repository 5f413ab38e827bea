"""The probability map as Cloud-Optimized GeoTIFFs (rio-cogeo): the mask and the probability.

GDAL, QGIS and web viewers read a COG by URL with range requests (tiles, then overviews), so
these outputs open straight from ``/jobs/{id}/results/{output}``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from sanchari_processes.engine.probability import ProbabilityMap


def write_mask_cog(prob: ProbabilityMap, path: Path, threshold: float, workdir: Path) -> Path:
    """The 0/255 road mask as a COG (overviews by nearest neighbour keep it binary)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        plain = Path(tmp) / "mask.tif"
        prob.save_mask(plain, threshold)
        return _translate(plain, path, "nearest")


def write_probability_cog(prob: ProbabilityMap, path: Path, workdir: Path) -> Path:
    """The float32 0..1 probability as a COG (overviews by averaging)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        plain = Path(tmp) / "probability.tif"
        prob.save_probability(plain)
        return _translate(plain, path, "average")


def _translate(src: Path, dst: Path, overview_resampling: str) -> Path:
    profile = cog_profiles.get("deflate")
    profile.update(blockxsize=256, blockysize=256)
    cog_translate(
        src,
        dst,
        profile,
        overview_resampling=overview_resampling,  # type: ignore[arg-type]
        in_memory=False,
        quiet=True,
        use_cog_driver=False,
    )
    return dst
