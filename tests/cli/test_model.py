"""``sanchari model-init``, ``model-info`` and ``model-export``."""

from __future__ import annotations

import json
import os
import shutil

import pytest

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


def test_model_export_writes_the_network_beside_the_weights(capsys, tmp_path, tiny_checkpoint):
    for suffix in (".safetensors", ".json"):  # a private copy: the JSON is rewritten
        shutil.copy(tiny_checkpoint.with_suffix(suffix), tmp_path / f"m{suffix}")
    code, _, err = run(capsys, "model-export", str(tmp_path / "m.safetensors"))
    assert code == 0, err
    assert f"fp32 → {tmp_path / 'm.onnx'}" in err
    code, out, _ = run(capsys, "model-info", str(tmp_path))
    assert code == 0 and list(json.loads(out)["exports"]["fp32"]["files"]) == ["m.onnx"]


def test_model_export_refuses_a_read_only_folder(capsys, tmp_path, tiny_checkpoint):
    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_checkpoint.with_suffix(suffix), tmp_path / f"m{suffix}")
    tmp_path.chmod(0o555)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        code, _, err = run(capsys, "model-export", str(tmp_path / "m.safetensors"))
    finally:
        tmp_path.chmod(0o755)
    assert code == 1 and "not writable" in err
