"""A sweep's report.md and figure, from its summary (every number read from the points' artifacts).

With several seeds, the report leads with one row per setting (eval accuracy's mean, standard deviation,
minimum and maximum; per seed what it clipped and whether it diverged) and the verdict with its rule
(pipeline/verdict.py); the figure draws the mean with the standard deviation as error bars."""
from __future__ import annotations

import math
import os
import statistics
from typing import Any, Dict, List, Optional, Sequence

from pipeline.config import is_uri
from pipeline.tools import figures

SETTING_COLUMNS = (
    "setting", "strategy", "threshold", "seeds", "eval accuracy mean +- std", "min", "max",
    "fraction clipped per seed", "diverged",
)
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


def setting_row(setting: Dict[str, Any]) -> List[str]:
    """One setting over its seeds as the table shows it."""
    accuracy, seeds = setting["eval_accuracy"], len(setting["seeds"])
    return [
        setting["setting"], setting["strategy"], _number(setting["threshold"]), ", ".join(map(str, setting["seeds"])),
        f"{accuracy['mean']:.4f} +- {accuracy['std'] or 0:.4f}" if accuracy["mean"] is not None else "-",
        _number(accuracy["min"]), _number(accuracy["max"]),
        ", ".join("-" if c is None else f"{c:.1%}" for c in setting["clipped_fractions"]),
        f"{setting['diverged_seeds']} of {seeds}",
    ]


def _table(columns: Sequence[str], rows: Sequence[List[str]]) -> List[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] * len(columns)) + "|",
            *("| " + " | ".join(cells) + " |" for cells in rows)]


def _series(settings: Sequence[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """The figure's lines: one per strategy (and per learning rate and divisor, where those vary)."""
    varied = [(key, short) for key, short in (("learning_rate", "lr"), ("divisor", "divisor"))
              if len({s[key] for s in settings}) > 1]
    lines: Dict[str, List[Dict[str, Any]]] = {}
    for setting in settings:
        label = " ".join([setting["strategy"], *(f"{short}={setting[key]:g}" for key, short in varied)])
        lines.setdefault(label, []).append(setting)
    return lines


def _spread(values: Sequence[Optional[float]]) -> tuple[float, float]:
    """Mean and standard deviation (0 for one value) of the known values."""
    known = [v for v in values if v is not None]
    return statistics.fmean(known), statistics.stdev(known) if len(known) > 1 else 0.0


def write_figure(settings: Sequence[Dict[str, Any]], path: str) -> str:
    """Eval accuracy and fraction of steps clipped against the threshold (log x), one line per strategy, the
    mean over seeds with the standard deviation as error bars; a strategy without a threshold (none, agc,
    ...) is a dashed level across, its spread a band."""
    plt = figures.pyplot()

    fig, (accuracy, clipped) = plt.subplots(2, 1, sharex=True, figsize=(8, 6.5), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, members), color in zip(_series(settings).items(), colors * 4):
        members = sorted((m for m in members if m["eval_accuracy"]["mean"] is not None),
                         key=lambda m: m["threshold"] or 0)
        if not members:
            continue
        scores = [(m["eval_accuracy"]["mean"], m["eval_accuracy"]["std"] or 0.0) for m in members]
        fractions = [_spread(m["clipped_fractions"]) for m in members]
        diverged = [m["diverged_seeds"] for m in members]
        if members[0]["threshold"] is None:  # one setting: a level across the thresholds
            seeds = len(members[0]["seeds"])
            note = f", diverged on {diverged[0]} of {seeds} seed(s)" if diverged[0] else ""
            for axes, (mean, std), name in ((accuracy, scores[0], f"{label} (no threshold{note})"),
                                            (clipped, fractions[0], label)):
                axes.axhline(mean, color=color, ls="--", lw=1, label=name)
                if std:
                    axes.axhspan(mean - std, mean + std, color=color, alpha=0.12, lw=0)
            continue
        xs = [m["threshold"] for m in members]
        accuracy.errorbar(xs, [m for m, _ in scores], yerr=[s for _, s in scores], fmt="o-", color=color,
                          capsize=3, label=label)
        clipped.errorbar(xs, [m for m, _ in fractions], yerr=[s for _, s in fractions], fmt="o-", color=color,
                         capsize=3, label=label)
        for x, (mean, _), gone in zip(xs, scores, diverged):  # diverged on some seed: a cross over its dot
            if gone:
                accuracy.plot(x, mean, "kx", ms=10)
    accuracy.set_xscale("log")
    thresholds = sorted({s["threshold"] for s in settings if s["threshold"] is not None})
    accuracy.set_xticks(thresholds, [f"{t:g}" for t in thresholds])  # the grid's values, not powers of ten
    accuracy.minorticks_off()
    seeds = max(len(s["seeds"]) for s in settings)
    accuracy.set_ylabel("eval accuracy" + (f" (mean +- std over {seeds} seeds)" if seeds > 1 else ""))
    accuracy.set_title("Eval accuracy against the clip threshold" + ("; x: diverged on a seed" if seeds > 1 else ""))
    accuracy.legend(fontsize=8)
    clipped.set_ylabel("fraction of steps clipped")
    clipped.set_xlabel("clip threshold (global or per-tensor norm; log scale)")
    clipped.set_title("How often clipping fired")
    clipped.legend(fontsize=8)
    return figures.save(fig, path)


def write_report(summary: Dict[str, Any], recipe: str, figure: str, path: str) -> str:
    """report.md: the recipe; with several seeds, a row per setting and the verdict; a row per Trainer; the
    figure. Paths are relative to the output directory, where the report is."""
    points, settings = summary["points"], summary["settings"]
    config = summary["config"]
    output_dir = config["pipeline"]["output_dir"]
    seeds = max(len(s["seeds"]) for s in settings) if settings else 1
    lines = [
        f"# Clip sweep: {len(settings)} settings x {seeds} seed(s), recipe `{recipe}`",
        "",
        f"One TFX pipeline (run `{summary['pipeline_run']}`): ingest, statistics, validation and Transform once, "
        f"then a Trainer and an Evaluator per setting and seed. Each trains {config['trainer']['epochs']} epoch(s), "
        f"{config['trainer']['optimizer']} at {config['trainer']['learning_rate']:g} ({config['trainer']['lr_schedule']}), "
        f"loss {config['trainer']['loss']}, inputs / {config['transform']['divisor']:g} ({config['transform']['mode']}).",
        "",
    ]
    if seeds > 1:
        lines += ["## Over seeds", "", *_table(SETTING_COLUMNS, [setting_row(s) for s in settings]), "",
                  *_verdict_lines(summary["verdict"]), "", "## Each Trainer", ""]
    lines += [*_table(COLUMNS, [row(point) for point in points]), ""]
    if seeds == 1:
        best = next((p for p in points if p["point"] == summary["best"]), None)
        lines.append(
            f"**Best: `{best['point']}`**, eval accuracy {best['eval_accuracy']:.4f} "
            f"({best['gradient_report']['clipped_fraction']:.1%} of steps clipped); by eval accuracy, ties to fewer "
            f"steps clipped; one seed, so not tested against seed noise. Its model: `{_relative(best['model'], output_dir)}`."
            if best else "**No point was evaluated.**")
        lines.append("")
    lines += [
        f"![eval accuracy and fraction clipped against the threshold]({os.path.basename(figure)})",
        "",
        "Side by side in TensorBoard (HParams table, Clipping dashboard), from this folder:",
        "`python -m pipeline.tools.tensorboard --output-dir .`",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def _verdict_lines(verdict: Dict[str, Any]) -> List[str]:
    """The verdict, the rule it follows and each p-value against the top setting."""
    lines = [f"**Verdict: {verdict['sentence']}.**"]
    if verdict["p_values"]:
        top = verdict["tied"][0] if verdict["tied"] else verdict["best"]
        lines += ["", f"p-values against `{top}` (the highest mean): "
                  + ", ".join(f"`{name}` {p:.3g}" for name, p in sorted(verdict["p_values"].items(), key=lambda i: -i[1]))
                  + "."]
    return lines


def _relative(path: Optional[str], output_dir: str) -> str:
    """``path`` as seen from the output directory (the report's folder), so a report shows no machine's paths."""
    return os.path.relpath(path, output_dir) if path and not is_uri(path) else str(path)
