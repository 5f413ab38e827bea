"""The ``sanchari`` group: every command's help, one-line errors, plug-ins loaded lazily."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest

from sanchari_processes.cli import cli
from sanchari_processes.cli.group import ENTRY_POINT_GROUP
from tests.cli_fixtures import run
from tests.synthetic import write_geotiff

BUILT_IN = ["predict", "predict-gee", "vectorize", "serve", "model-info", "model-init"]
BUILT_IN += ["model-export"]


@pytest.mark.parametrize("command", [[], *([name] for name in BUILT_IN)])
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage:" in out
    assert f"Usage: {' '.join(['sanchari', *command])} [OPTIONS]" in out


def test_a_plugin_that_cannot_load_is_one_error_line(capsys, monkeypatch):
    broken = EntryPoint("broken", "no_such_package.commands:command", ENTRY_POINT_GROUP)
    shadowed = EntryPoint("predict", "no_such_package.commands:command", ENTRY_POINT_GROUP)
    monkeypatch.setattr(cli, "plugins", {"broken": broken, "predict": shadowed})
    code, _, err = run(capsys, "broken", "--help")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: `sanchari broken` cannot be loaded here")
    code, out, _ = run(capsys, "predict", "--help")  # a built-in is never replaced
    assert code == 0 and "--tta" in out


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["predict", "nope.tif", "-o", "x.geojson"], 1, "input not found"),
        (["predict", "{tif}", "-o", "x.geojson", "--weights", "{tmp}/none"], 1, "none"),
        (["predict", "{tif}", "-o", "x.geojson", "--tta", "wild"], 2, "wild"),
        (["predict", "{tif}", "-o", "x.geojson", "--backend", "tpu"], 2, "tpu"),
        (["predict", "{tif}", "-o", "x.geojson", "--weights", "{ckpt}", "--int8",
          "--backend", "torch"], 1, "int8"),
        (["model-export", "{ckpt}", "--int8"], 2, "--calibration"),
        (["model-export", "{ckpt}", "--int8", "--calibration", "{tmp}/none"], 1, "not found"),
        (["predict", "{tif}", "-o", "x.geojson", "--threshold", "2"], 2, "threshold"),
        (["predict", "{tif}", "-o", "a.geojson", "--out-dir", "d"], 2, "exactly one"),
        (["predict", "{tif}"], 2, "exactly one"),
        (["predict", "{tif}", "-o", "{tmp}/no/such/dir/x.geojson", "--weights", "{ckpt}"], 1,
         "output directory does not exist"),
        (["predict", "{tif}", "-o", "x.geojson", "--weights", "{ckpt}", "--bands", "1,2,9"], 1,
         "band 9"),
        (["vectorize", "{tmp}/missing.tif", "-o", "x.geojson"], 1, "input not found"),
        (["vectorize", "{bad}", "-o", "x.geojson"], 1, "cannot read"),
        (["vectorize", "{float2}", "-o", "x.geojson"], 1, "0..1"),
        (["model-info", "{tmp}/none.safetensors"], 1, "none"),
        (["model-init", "--preset", "huge", "-o", "{tmp}/m.safetensors"], 1, "huge"),
        (["frobnicate"], 2, "frobnicate"),
    ],
)  # fmt: skip
def test_errors_are_one_line(capsys, tmp_path, utm_tif, tiny_checkpoint, args, status, message):
    (tmp_path / "bad.tif").write_bytes(b"garbage")
    float2 = write_geotiff(tmp_path / "f.tif", np.full((1, 8, 8), 2.0, np.float32))
    subs = {
        "{tif}": str(utm_tif),
        "{tmp}": str(tmp_path),
        "{ckpt}": str(tiny_checkpoint),
        "{bad}": str(tmp_path / "bad.tif"),
        "{float2}": str(float2),
    }
    for key, value in subs.items():
        args = [a.replace(key, value) for a in args]
    code, _, err = run(capsys, *args)
    assert code == status
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in err
