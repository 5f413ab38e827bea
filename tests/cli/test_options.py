"""Options declared once in ``sanchari_processes.cli.options`` and what they map to."""

from __future__ import annotations


def test_option_lists_are_defined_once():
    from sanchari_processes.cli import cli
    from sanchari_processes.config import BACKENDS, TTA_MODES
    from sanchari_processes.inputs import TTA

    params = {p.name: p for p in cli.commands["predict"].params}
    assert tuple(params["tta"].type.choices) == TTA_MODES
    assert tuple(params["backend"].type.choices) == BACKENDS
    assert tuple(TTA["enum"]) == TTA_MODES and TTA["default"] == params["tta"].default


def test_an_engine_option_is_the_same_on_every_command():
    """--tta, --device, --backend: one declaration, so the same choices everywhere."""
    from sanchari_processes.cli import cli
    from sanchari_processes.config import DEVICES, TTA_MODES
    from training.evaluate import command as evaluate
    from training.optimize_threshold import command as optimize_threshold
    from training.pseudo_label import command as pseudo_label
    from training.train import command as train

    def param(command, name):
        return next(p for p in command.params if p.name == name)

    predict = cli.commands["predict"]
    for command in (evaluate, optimize_threshold, pseudo_label, cli.commands["predict-gee"]):
        for name in ("tta", "device"):
            assert param(command, name).type.choices == param(predict, name).type.choices
    assert param(evaluate, "backend").type.choices == param(predict, "backend").type.choices
    assert tuple(param(train, "device").type.choices) == DEVICES
    assert tuple(param(evaluate, "tta").type.choices) == TTA_MODES
    assert param(pseudo_label, "tta").default == "d4"  # a command's own default
    assert param(pseudo_label, "weights").required and not param(predict, "weights").required


def test_a_new_engine_option_needs_no_mapping_code(tmp_path):
    """Declared with the config field it fills, an option reaches the engine's configs."""
    import click
    from click.testing import CliRunner

    from sanchari_processes.cli import options

    stream_window = options.option("--stream-window", into="inference", type=int, default=2048)
    seen = {}

    @click.command()
    @options.engine_options(options.weights, options.tta, options.threshold, stream_window)
    def probe(engine: options.EngineArgs) -> None:
        seen["options"] = engine.engine_options()

    args = ["--weights", str(tmp_path), "--tta", "none", "--threshold", "0.3"]
    result = CliRunner().invoke(probe, [*args, "--stream-window", "1024"])
    assert result.exit_code == 0, result.output
    chosen = seen["options"]
    assert chosen.weights == tmp_path and chosen.threshold == 0.3
    assert chosen.inference.tta == "none" and chosen.inference.stream_window == 1024


def test_an_impossible_config_is_the_users_error():
    import pytest

    from sanchari_processes.cli import options
    from sanchari_processes.errors import InvalidInputError

    given = options.EngineArgs({"patch_size": 64, "stride": 128}, (options.patch, options.stride))
    with pytest.raises(InvalidInputError, match="stride <= patch_size"):
        given.inference()


def test_overrides_name_chosen_options():
    import pytest

    from sanchari_processes.cli import options

    with pytest.raises(TypeError, match="tta"):
        options.engine_options(options.weights, tta={"default": "d4"})
