"""``python -m training.export``: a run's checkpoint → the half-precision file that ships.

The shipped model in ``weights/`` is float16 (half the size; loading restores float32), keeps
the run's metadata (recipe, split, threshold search) and, with ``--report``, the held-out
evaluation it was released with, so ``sanchari model-info`` shows how good it is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import load_checkpoint, save_checkpoint
from training.cli import ArgumentParser, fraction, run_main


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m training.export",
        description="Write a checkpoint as float16 safetensors + metadata for release.",
    )
    parser.add_argument("--weights", type=Path, required=True, help="checkpoint to export")
    parser.add_argument("-o", "--out", type=Path, required=True, help="target .safetensors")
    parser.add_argument("--model-id", help="model_id of the release (default: keep)")
    parser.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="store a training.evaluate JSON report under metrics.evaluation.NAME (repeatable; "
        "each must be scored at the release's threshold)",
    )
    parser.add_argument(
        "--threshold",
        type=fraction,
        help="release threshold other than the threshold search's (with --threshold-reason)",
    )
    parser.add_argument(
        "--threshold-reason",
        help="why (recorded in metrics.threshold_choice, e.g. a flat held-out curve and a "
        "target-domain dev set that prefers this value)",
    )
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reports = _reports(args.report)
    loaded = load_checkpoint(args.weights, "cpu")
    meta = loaded.metadata
    metrics = dict(meta.metrics)
    threshold = meta.threshold
    if (args.threshold is None) != (args.threshold_reason is None):
        raise InvalidInputError("--threshold and --threshold-reason go together")
    if args.threshold is not None:
        threshold = args.threshold
        metrics["threshold_choice"] = {
            "threshold": threshold,
            "search_threshold": meta.threshold,
            "reason": args.threshold_reason,
        }
    _check_thresholds(reports, threshold)
    if reports:
        metrics["evaluation"] = {**metrics.get("evaluation", {}), **reports}
    metadata = replace(
        meta, model_id=args.model_id or meta.model_id, threshold=threshold, metrics=metrics
    )
    target = save_checkpoint(loaded.module, metadata, args.out, half=True)
    size_mb = target.stat().st_size / 1e6
    print(f"{target}: {size_mb:.1f} MB float16, model_id {metadata.model_id}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, None))
