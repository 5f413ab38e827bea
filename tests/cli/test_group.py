"""The ``sanchari`` group: every command's help, one-line errors, plug-ins loaded lazily."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import click
import numpy as np
import pytest

from sanchari_processes.cli import cli
from sanchari_processes.cli.group import ENTRY_POINT_GROUP, SanchariGroup, installed_commands
from tests.cli_fixtures import declared_commands, run
from tests.synthetic import write_geotiff

BUILT_IN = ["predict", "predict-gee", "vectorize", "serve", "model-info", "model-init"]
BUILT_IN += ["model-export"]
TRAINING = ["preprocess", "train", "train-lovasz", "pseudo-label", "optimize-threshold"]
TRAINING += ["evaluate", "release"]


@pytest.mark.parametrize("command", [[], *([name] for name in BUILT_IN + TRAINING)])
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage:" in out
    assert f"Usage: {' '.join(['sanchari', *command])} [OPTIONS]" in out


def test_setup_cfg_declares_the_training_commands():
    declared = declared_commands()
    assert sorted(declared) == sorted(TRAINING)
    for name, point in declared.items():
        command = point.load()
        assert isinstance(command, click.Command) and command.name == name


def test_help_lists_training_commands_without_importing_them():
    """``sanchari --help`` names the plug-ins from metadata: no training module, no torch."""
    code = (
        "import sys; from sanchari_processes.cli import cli, main; "
        "from tests.cli_fixtures import declared_commands; "
        "cli.plugins = declared_commands(); rc = main(['--help']); "
        "loaded = {'torch', 'training', 'cv2'} & {m.split('.')[0] for m in sys.modules}; "
        "print(rc, sorted(loaded))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
    assert "Training commands" in done.stdout and "train-lovasz" in done.stdout


def test_a_training_command_loads_on_use(capsys):
    group = SanchariGroup(name="sanchari")
    group.plugins = declared_commands()
    assert group.list_commands(click.Context(group)) == sorted(TRAINING)
    command = group.get_command(click.Context(group), "evaluate")
    from training.evaluate import command as evaluate

    assert command is evaluate
    code, out, _ = run(capsys, "release", "--help")
    assert code == 0 and "float16" in out


def test_entry_points_are_discovered(tmp_path, monkeypatch):
    """What pip writes for setup.cfg's declaration is what the group reads."""
    dist = tmp_path / "sanchari_plugins-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sanchari-plugins\nVersion: 0\n")
    lines = [f"{p.name} = {p.value}" for p in declared_commands().values()]
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = installed_commands()
    assert {n: p.value for n, p in found.items()} == {
        n: p.value for n, p in declared_commands().items()
    }
    assert SanchariGroup(name="sanchari").plugin_names() == sorted(TRAINING)


def test_installed_entry_points_match_setup_cfg():
    installed = installed_commands()
    if not installed:
        pytest.skip("this environment was installed before the sanchari.commands entry points")
    assert {n: p.value for n, p in installed.items()} == {
        n: p.value for n, p in declared_commands().items()
    }


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
        (["predict", "{tif}", "-o", "x.geojson", "--weights", "{ckpt}", "--precision", "int8",
          "--backend", "torch"], 1, "int8"),
        (["predict", "{tif}", "-o", "x.geojson", "--precision", "int4"], 2, "int4"),
        (["model-export", "{ckpt}", "--precision", "int8"], 2, "--calibration"),
        (["model-export", "{ckpt}", "--calibration", "{tmp}"], 2, "--precision int8"),
        (["model-export", "{ckpt}", "--precision", "int8", "--calibration", "{tmp}/none"], 1,
         "not found"),
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
        (["evaluate", "--truth", "x"], 1, "give --pred"),
        (["evaluate", "--pred", "p", "--truth", "t", "--tta", "wild"], 2, "wild"),
        (["train", "--manifest", "m.json", "-o", "o", "--device", "tpu"], 2, "tpu"),
        (["release", "--weights", "{ckpt}", "-o", "x.safetensors", "--report", "x"], 1,
         "NAME=report.json"),
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
