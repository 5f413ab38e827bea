"""Running ``sanchari`` in-process."""

from __future__ import annotations

import pytest

from sanchari_processes.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``sanchari ARGS``: exit status, stdout, stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
