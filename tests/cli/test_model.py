"""``sanchari model-init``, ``model-info`` and ``model-export``."""

from __future__ import annotations

import json

from tests.cli_fixtures import run


def test_model_init_and_info(capsys, tmp_path):
    path = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "model-init", "--preset", "lite0", "-o", str(path))
    assert code == 0, err
    code, out, _ = run(capsys, "model-info", str(path))
    assert code == 0
    info = json.loads(out)
    assert info["metrics"]["untrained"] is True
    assert info["architecture"]["encoder_name"].endswith("lite0")


def test_model_export_builds_the_cache(capsys, tmp_path, tiny_checkpoint):
    cache = tmp_path / "cache"
    code, _, err = run(capsys, "model-export", str(tiny_checkpoint), "--cache-dir", str(cache))
    assert code == 0, err
    assert "float32 → " in err and list(cache.glob("models/*/model.onnx"))
