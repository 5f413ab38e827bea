"""What produced a result: model, source, window and options, carried in the GeoJSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sanchari_processes import __version__
from sanchari_processes.config import InferenceConfig, VectorizeConfig


def provenance(meta: Any, source: Any, icfg: InferenceConfig, vcfg: VectorizeConfig) -> dict:
    """A JSON-able record of how a FeatureCollection was made (a GeoJSON foreign member)."""
    return {
        "version": __version__,
        "model": {
            "id": meta.model_id,
            "sha256": meta.weights_sha256,
            "gsd_m": meta.gsd_m,
        },
        "source": {
            "name": source.path.name,
            "crs": source.crs.to_string() if source.crs else None,
            "width": source.width,
            "height": source.height,
            "gsd_m": source.gsd_m,
            "bands": list(source.bands),
        },
        "inference": {"tta": icfg.tta, "patch_size": icfg.patch_size, "stride": icfg.stride},
        "vectorize": {k: v for k, v in asdict(vcfg).items() if k != "progress"},
    }
