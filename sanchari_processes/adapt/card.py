"""The adapted model's card: what it was adapted on, what was measured, and the verdict."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def render(model_id: str, report: dict[str, Any]) -> str:
    """Markdown for ``MODEL_CARD.md`` beside the adapted weights."""
    data, parent = report["data"], report["parent"]
    base, recal = report["base"], report["recalibrated"]
    lines = [
        f"# {model_id}",
        "",
        f"Adapted from `{parent['model_id']}` (SHA-256 `{parent['sha256'][:16]}…`) to "
        f"{data['images']} image(s) ({', '.join(data['names'])}) with {data['roads']}: "
        f"{data['labelled_km2']:g} km² labelled at {data['gsd_m']:g} m, "
        f"{100 * data['road_share']:.1f} % of it road.",
        "",
        f"**Verdict: {report['verdict']}.** Threshold {_f(report['threshold'], 2)}.",
        "",
        "| road IoU on the labelled area | threshold | IoU |",
        "|---|---:|---:|",
        f"| base model, its own threshold | {_f(base['threshold'], 2)} | {_f(base['iou'])} |",
        f"| base model, threshold re-chosen here | {_f(recal['threshold'], 2)} | "
        f"{_f(recal['iou'])} |",
    ]
    cv = report.get("cross_validation")
    if cv:
        lines += [
            "",
            "Scored by two-fold spatial cross-validation: each fold's fine-tune predicted the "
            "blocks it did not train on, and a re-chosen threshold was chosen on one fold and "
            "scored on the other.",
            "",
            "| out of fold | IoU | fold 1 | fold 2 |",
            "|---|---:|---:|---:|",
            _row("base model, its own threshold", cv["base_iou"], cv["base_folds"]),
            _row(
                "base model, threshold re-chosen", cv["recalibrated_iou"], cv["recalibrated_folds"]
            ),
        ]
        if "adapted_iou" in cv:
            steps = " + ".join(str(s) for s in cv["steps"])
            lines.append(
                _row(f"fine-tuned ({steps} steps)", cv["adapted_iou"], cv["adapted_folds"])
            )
        if cv.get("final_steps"):
            lines += [
                "",
                f"The model shipped was fine-tuned on every labelled block ({cv['final_steps']} "
                f"steps), at the threshold best for it over the labelled pixels "
                f"({_f(cv['final_threshold'], 2)}; the fold models' "
                f"out-of-fold threshold was {_f(cv['threshold'], 2)}).",
            ]
        if cv.get("skipped"):
            lines += ["", f"Fine-tuning was skipped: {cv['skipped']}."]
    lines += [
        "",
        f"The IoU on the labelled area is measured on the roads the model was adapted to; the "
        f"out-of-fold figures are the fair ones. Took {report['seconds']:g} s.",
        "",
    ]
    return "\n".join(lines)


def _row(what: str, pooled: float, folds: list[float]) -> str:
    return f"| {what} | {_f(pooled)} | " + " | ".join(_f(v) for v in folds) + " |"
