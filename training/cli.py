"""Shared command-line plumbing: one ``error: ...`` line and a non-zero exit for user mistakes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sanchari_processes.errors import SanchariError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad options as ``error: ...`` (one line) and exits with 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see --help)\n")
        raise SystemExit(2)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a float in [0, 1)."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a float > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def scale_range(text: str) -> tuple[float, float]:
    """argparse type: ``"0.7,1.4"`` -> (0.7, 1.4), a zoom range with 0 < min <= max."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX such as 0.7,1.4, got {text}") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"need 0 < MIN <= MAX, got {text}")
    return (low, high)


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Call ``main`` and turn expected failures into one stderr line and an exit status."""
    try:
        return main(argv)
    except SanchariError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"error: {exc.strerror or exc}{where}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
