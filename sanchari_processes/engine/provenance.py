"""What produced a result: model, source, window and options, carried in the GeoJSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sanchari_processes import __version__
from sanchari_processes.config import VectorizeConfig


def provenance(predictor: Any, source: Any, vcfg: VectorizeConfig) -> dict:
    """A JSON-able record of how a FeatureCollection was made (a GeoJSON foreign member).

    The inference settings come from the predictor that ran, with its resolved device, backend
    and batch size, so the record cannot differ from what produced the roads.
    """
    meta, icfg = predictor.metadata, predictor.config
    model: dict[str, Any] = {
        "id": meta.model_id,
        "sha256": meta.weights_sha256,
        "gsd_m": meta.gsd_m,
    }
    adaptation = (meta.metrics or {}).get("adaptation")
    if isinstance(adaptation, dict) and isinstance(adaptation.get("parent"), dict):
        model["parent"] = adaptation["parent"]  # an adapted model: what it was adapted from
    return {
        "version": __version__,
        "model": model,
        "source": {
            "name": source.path.name,
            "crs": source.crs.to_string() if source.crs else None,
            "width": source.width,
            "height": source.height,
            "gsd_m": source.gsd_m,
            "bands": list(source.bands),
        },
        "inference": {
            "tta": icfg.tta,
            "patch_size": icfg.patch_size,
            "stride": icfg.stride,
            "edge_margin": icfg.edge_margin,
            "batch_size": icfg.batch_size,
            "backend": predictor.runner.name,
            "device": predictor.runner.device,
            "precision": icfg.precision,
            "arithmetic": getattr(predictor.runner, "arithmetic", None),
        },
        "vectorize": {k: v for k, v in asdict(vcfg).items() if k not in ("progress", "jit_cache")},
    }
