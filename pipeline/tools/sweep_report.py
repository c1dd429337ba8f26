"""A sweep's report.md and figure, from its summary (every number read from the points' artifacts)."""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence

from pipeline.tools import figures

COLUMNS = (
    "point", "strategy", "threshold", "eval accuracy", "final loss", "max pre-clip norm", "p99 pre-clip norm",
    "fraction clipped", "non-finite steps", "diverged at", "Trainer seconds", "spike steps skipped", "rollbacks",
)


def _number(value: Optional[float], digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def row(point: Dict[str, Any]) -> List[str]:
    """One point as the table shows it."""
    report = point["gradient_report"] or {}
    seconds = _number(point["trainer_seconds"], 3)
    return [
        point["point"], point["strategy"], _number(point["threshold"]),
        f"{point['eval_accuracy']:.4f}" if point["eval_accuracy"] is not None else "-",
        _number(report.get("final_loss")), _number(report.get("max_pre_clip_norm")),
        _number(report.get("p99_pre_clip_norm")),
        f"{report['clipped_fraction']:.1%}" if report else "-",
        str(report.get("nonfinite_steps", "-")),
        "-" if report.get("diverged_at_step") is None else str(report["diverged_at_step"]),
        seconds + (" (cached)" if point["trainer_state"] == "CACHED" else ""),
        str(report.get("skipped_spikes", "-")), str(len(report["rollbacks"])) if "rollbacks" in report else "-",
    ]


def _series(points: Sequence[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """The figure's lines: one per strategy (and per learning rate and divisor, where those vary)."""
    varied = [(key, short) for key, short in (("learning_rate", "lr"), ("divisor", "divisor"))
              if len({p[key] for p in points}) > 1]
    lines: Dict[str, List[Dict[str, Any]]] = {}
    for point in points:
        label = " ".join([point["strategy"], *(f"{short}={point[key]:g}" for key, short in varied)])
        lines.setdefault(label, []).append(point)
    return lines


def write_figure(points: Sequence[Dict[str, Any]], path: str) -> str:
    """Eval accuracy and fraction of steps clipped against the threshold (log x), one line per strategy;
    a strategy without a threshold (none, agc, ...) is a dashed level across."""
    plt = figures.pyplot()

    fig, (accuracy, clipped) = plt.subplots(2, 1, sharex=True, figsize=(8, 6.5), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, members), color in zip(_series(points).items(), colors * 4):
        members = sorted((m for m in members if m["eval_accuracy"] is not None), key=lambda m: m["threshold"] or 0)
        if not members:
            continue
        fractions = [m["gradient_report"]["clipped_fraction"] for m in members]
        diverged = [m["gradient_report"]["diverged_at_step"] is not None for m in members]
        if members[0]["threshold"] is None:  # one point: a level across the thresholds
            note = ", diverged" if diverged[0] else ""
            accuracy.axhline(members[0]["eval_accuracy"], color=color, ls="--", lw=1, label=f"{label} (no threshold{note})")
            clipped.axhline(fractions[0], color=color, ls="--", lw=1, label=label)
            continue
        xs = [m["threshold"] for m in members]
        accuracy.plot(xs, [m["eval_accuracy"] for m in members], "o-", color=color, label=label)
        clipped.plot(xs, fractions, "o-", color=color, label=label)
        for x, member, gone in zip(xs, members, diverged):  # a diverged point: a cross over its dot
            if gone:
                accuracy.plot(x, member["eval_accuracy"], "kx", ms=10)
    accuracy.set_xscale("log")
    thresholds = sorted({p["threshold"] for p in points if p["threshold"] is not None})
    accuracy.set_xticks(thresholds, [f"{t:g}" for t in thresholds])  # the grid's values, not powers of ten
    accuracy.minorticks_off()
    accuracy.set_ylabel("eval accuracy")
    accuracy.set_title("Eval accuracy against the clip threshold")
    accuracy.legend(fontsize=8)
    clipped.set_ylabel("fraction of steps clipped")
    clipped.set_xlabel("clip threshold (global or per-tensor norm; log scale)")
    clipped.set_title("How often clipping fired")
    clipped.legend(fontsize=8)
    return figures.save(fig, path)


def write_report(summary: Dict[str, Any], recipe: str, figure: str, path: str) -> str:
    """report.md: the recipe, one row per point, the best point, the figure."""
    points = summary["points"]
    best = next((p for p in points if p["point"] == summary["best"]), None)
    config = summary["config"]
    lines = [
        f"# Clip sweep: {len(points)} points, recipe `{recipe}`",
        "",
        f"One TFX pipeline (run `{summary['pipeline_run']}`): ingest, statistics, validation and Transform once, "
        f"then a Trainer and an Evaluator per point. Each trains {config['trainer']['epochs']} epoch(s), "
        f"{config['trainer']['optimizer']} at {config['trainer']['learning_rate']:g} ({config['trainer']['lr_schedule']}), "
        f"loss {config['trainer']['loss']}, inputs / {config['transform']['divisor']:g} ({config['transform']['mode']}).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---"] * len(COLUMNS)) + "|",
        *("| " + " | ".join(row(point)) + " |" for point in points),
        "",
        (f"**Best: `{best['point']}`**, eval accuracy {best['eval_accuracy']:.4f} "
         f"({best['gradient_report']['clipped_fraction']:.1%} of steps clipped); by eval accuracy, ties to fewer "
         f"steps clipped. Its model: `{best['model']}`." if best else "**No point was evaluated.**"),
        "",
        f"![eval accuracy and fraction clipped against the threshold]({os.path.basename(figure)})",
        "",
        "Side by side in TensorBoard (HParams table, Clipping dashboard):",
        f"`{summary['dashboards_command']}`",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
