"""The exploding-gradient experiment's figure and Markdown report, from event files."""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from components.trainer import tags
from pipeline.tools import figures
from pipeline.tools.events import read_run, scalar_curve


@dataclasses.dataclass
class RunResult:
    """One Trainer run of the experiment: its summary and the curves its event files hold."""

    name: str
    clipped: bool
    summary: Dict[str, Any]
    steps: np.ndarray  # finite steps only: non-finite ones write no norms
    pre_clip: np.ndarray
    post_clip: np.ndarray
    loss_steps: np.ndarray
    loss: np.ndarray
    variable_norms: Dict[str, Dict[int, float]]  # variable -> {step: pre-clip norm} for steps 0 and 1
    clipped_steps: int

    @classmethod
    def from_summary(cls, name: str, summary: Dict[str, Any], clipped: bool) -> "RunResult":
        events = read_run(summary["tensorboard_logdir"])
        steps, pre = scalar_curve(events[tags.PRE_CLIP])
        _, post = scalar_curve(events[tags.POST_CLIP])
        loss_steps, loss = scalar_curve(events[tags.LOSS])
        per_variable = {
            tags.variable_of_norm(tag, tags.PRE): {s: float(series[s]) for s in (0, 1) if s in series}
            for tag, series in events.items() if tags.variable_of_norm(tag, tags.PRE)
        }
        clipped_steps = int(sum(float(v) for v in events[tags.CLIPPED].values()))
        return cls(name, clipped, summary, steps, pre, post, loss_steps, loss, per_variable, clipped_steps)

    @property
    def report(self) -> Dict[str, Any]:
        return self.summary["gradient_report"]

    def headline(self) -> str:
        diverged = self.report["diverged_at_step"]
        outcome = f"training diverged at step {diverged}" if diverged is not None else "trained"
        return (
            f"{self.name}: {outcome}; max pre-clip norm {self.pre_clip.max():.4g}, "
            f"eval accuracy {self.summary['eval_accuracy']:.4f}, blessed: {self.summary['blessed']}"
        )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name, "clipped": self.clipped, "summary": self.summary,
            "max_pre_clip_norm": float(self.pre_clip.max()), "max_post_clip_norm": float(self.post_clip.max()),
            "variable_norms_steps_0_1": self.variable_norms, "clipped_steps": self.clipped_steps,
        }


def write_figure(results: Sequence[RunResult], threshold: float, path: str) -> str:
    """Pre/post-clip global norm per step above loss per step: log y, shared symlog x."""
    plt = figures.pyplot()

    fig, (norms, losses) = plt.subplots(2, 1, sharex=True, figsize=(10, 7.5), constrained_layout=True)
    for result, color in zip(results, ("tab:red", "tab:blue")):
        norms.semilogy(result.steps, result.pre_clip, color=color, lw=0.8, label=f"{result.name}: pre-clip")
        if result.clipped:
            norms.semilogy(result.steps, result.post_clip, color=color, lw=1.2, ls="--", label=f"{result.name}: post-clip")
        losses.semilogy(result.loss_steps, result.loss, color=color, lw=0.8, label=result.name)
        first_bad = result.report["first_nonfinite_step"]
        if first_bad is not None:
            for axis in (norms, losses):
                axis.axvline(first_bad, color=color, ls=":", lw=1)
            norms.annotate(f"first NaN/Inf step: {first_bad}", (first_bad, norms.get_ylim()[1]), color=color,
                           xytext=(4, -12), textcoords="offset points", fontsize=8)
    norms.axhline(threshold, color="black", lw=0.8, ls=":", label=f"clip threshold {threshold:g}")
    norms.set_ylabel("global gradient norm")
    norms.set_title("Gradient norms per step (log scale)")
    norms.legend(fontsize=8)
    losses.set_ylabel("training loss (MSE)")
    losses.set_xscale("symlog", linthresh=10)  # the first steps, where it all happens, stay visible
    losses.set_xlim(0, max(int(r.loss_steps.max()) for r in results if r.loss_steps.size) + 1)
    losses.set_xlabel("step (linear to 10, logarithmic after)")
    losses.set_title("Loss per step (log scale)")
    losses.legend(fontsize=8)
    return figures.save(fig, path)


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def write_report(results: Sequence[RunResult], args: Dict[str, Any], figure: str, path: str) -> str:
    """A short Markdown report; every number comes from the event files or the run summary."""
    headers = " | ".join(r.name for r in results)
    rule = "|".join(["---"] * (len(results) + 1))
    row = lambda label, values: f"| {label} | " + " | ".join(values) + " |"  # noqa: E731
    lines = [
        "# Exploding gradients: clipping off vs on",
        "",
        f"Recipe: inputs / 50, MLP 784-512-256-10 (ReLU), MSE on one-hot labels, SGD at a constant learning rate "
        f"{args['learning_rate']:g}, batch 128, truncated-normal init (stddev 0.1), {args['epochs']} epochs; "
        f"the clipped run uses `clip_by_global_norm(grads, {args['clip_threshold']:g})`.",
        "",
        f"| | {headers} |",
        f"|{rule}|",
        row("max pre-clip global norm", [_fmt(float(r.pre_clip.max())) for r in results]),
        row("max post-clip global norm", [_fmt(float(r.post_clip.max())) for r in results]),
        row("first non-finite step", [_fmt(r.report["first_nonfinite_step"]) for r in results]),
        row("training diverged at step", [_fmt(r.report["diverged_at_step"]) for r in results]),
        row("steps clipped", [f"{r.clipped_steps} ({r.clipped_steps / max(len(r.steps), 1):.2%})" for r in results]),
        row("steps trained", [str(r.report["steps"]) for r in results]),
        row("final loss (last finite step)", [_fmt(float(r.loss[-1])) for r in results]),
        row("eval accuracy (TFMA)", [_fmt(r.summary["eval_accuracy"]) for r in results]),
        row("blessed", ["yes" if r.summary["blessed"] else "no" for r in results]),
        "",
        "## Pre-clip gradient norm per variable at steps 0 and 1",
        "",
        "| variable | " + " | ".join(f"{r.name}: step {s}" for r in results for s in (0, 1)) + " |",
        "|" + "|".join(["---"] * (2 * len(results) + 1)) + "|",
    ]
    for variable in results[0].variable_norms:
        values = [_fmt(r.variable_norms[variable].get(s)) for r in results for s in (0, 1)]
        lines.append(row(f"`{variable}`", values))
    lines += ["", f"![gradient norms and loss per step]({os.path.basename(figure)})", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
