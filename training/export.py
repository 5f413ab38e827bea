"""``sanchari release``: a run's checkpoint → the half-precision file that ships.

The shipped model in ``weights/`` is float16 (half the size; loading restores float32), keeps
the run's metadata (recipe, split, threshold search) and, with ``--report``, the held-out
evaluation it was released with, so ``sanchari model-info`` shows how good it is.
``python -m training.export`` is the same command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from sanchari_processes.cli import options, run
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import load_checkpoint, save_checkpoint
from sanchari_processes.inference.export import export_beside


def _reports(items: Sequence[str]) -> dict[str, object]:
    """``NAME=path.json`` pairs → ``{NAME: report}``; bad names or JSON are caller errors."""
    out: dict[str, object] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InvalidInputError(f"--report {item}: expected NAME=report.json")
        try:
            out[name] = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInputError(f"--report {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"--report {path}: not JSON ({exc.msg})") from None
    return out


def _check_thresholds(reports: dict[str, object], threshold: float) -> None:
    """A report scored at another threshold would describe a model that does not ship."""
    for name, report in reports.items():
        scored = report.get("threshold") if isinstance(report, dict) else None
        if scored is not None and abs(float(scored) - threshold) > 1e-9:
            raise InvalidInputError(
                f"--report {name}: scored at threshold {scored}, the release uses {threshold}"
            )


@click.command("release", context_settings=options.CONTEXT_SETTINGS)
@options.weights(required=True, help="Checkpoint to export.")
@click.option("-o", "--out", type=options.PATH, required=True, help="Target .safetensors.")
@click.option("--model-id", help="model_id of the release (default: keep).")
@click.option(
    "--report",
    "report_items",
    multiple=True,
    metavar="NAME=JSON",
    help="Store a `sanchari evaluate` JSON report under metrics.evaluation.NAME (repeatable; "
    "each must be scored at the release's threshold).",
)
@options.threshold(
    help="Release threshold other than the threshold search's (with --threshold-reason)."
)
@click.option(
    "--threshold-reason",
    help="Why (recorded in metrics.threshold_choice, e.g. a flat held-out curve and a "
    "target-domain dev set that prefers this value).",
)
def command(
    weights: Path,
    out: Path,
    model_id: str | None,
    report_items: tuple[str, ...],
    threshold: float | None,
    threshold_reason: str | None,
) -> None:
    """Write a checkpoint as float16 safetensors + metadata for release."""
    reports = _reports(report_items)
    loaded = load_checkpoint(weights, "cpu")
    meta = loaded.metadata
    metrics = dict(meta.metrics)
    chosen = meta.threshold
    if (threshold is None) != (threshold_reason is None):
        raise InvalidInputError("--threshold and --threshold-reason go together")
    if threshold is not None:
        chosen = threshold
        metrics["threshold_choice"] = {
            "threshold": chosen,
            "search_threshold": meta.threshold,
            "reason": threshold_reason,
        }
    _check_thresholds(reports, chosen)
    if reports:
        metrics["evaluation"] = {**metrics.get("evaluation", {}), **reports}
    metadata = replace(meta, model_id=model_id or meta.model_id, threshold=chosen, metrics=metrics)
    target = save_checkpoint(loaded.module, metadata, out, half=True)
    size_mb = target.stat().st_size / 1e6
    print(f"{target}: {size_mb:.1f} MB float16, model_id {metadata.model_id}")
    # the released model carries its exported network, so the base install runs it (no torch)
    print(f"{export_beside(target)}: the exported network, listed in the model's JSON")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.export``: ``sanchari release`` under its old name."""
    return run(command, argv, "python -m training.export")


if __name__ == "__main__":
    sys.exit(main())
