"""The gradient report: how healthy training was, in a few numbers.

Written as JSON next to the TensorBoard logs and printed at the end of the
Trainer, so a user (or the pipeline) can judge a run without opening
TensorBoard.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

REPORT_FILE = "gradient_report.json"
# A spike, for "which came first": a value above SPIKE_FACTOR x the median of the SPIKE_WINDOW values before it,
# once SPIKE_MIN_HISTORY are known (early steps set no baseline).
SPIKE_FACTOR, SPIKE_WINDOW, SPIKE_MIN_HISTORY = 5.0, 100, 10


def first_spike(values: np.ndarray, measured: np.ndarray) -> Optional[int]:
    """The first ``measured`` step whose value is not finite or is a spike over the finite values before it."""
    history: List[float] = []
    for step in np.flatnonzero(measured):
        value = float(values[step])
        if len(history) >= SPIKE_MIN_HISTORY and not value <= SPIKE_FACTOR * np.median(history[-SPIKE_WINDOW:]):
            return int(step)
        if math.isfinite(value):
            history.append(value)
    return None


@dataclasses.dataclass(frozen=True)
class GradientReport:
    steps: int
    max_pre_clip_norm: float
    median_pre_clip_norm: float
    p99_pre_clip_norm: float
    clipped_fraction: float
    nonfinite_steps: int
    first_clipped_step: Optional[int]
    largest_norm_variable: str
    largest_norm_value: float
    first_nonfinite_step: Optional[int]
    diverged_at_step: Optional[int]  # where training stopped after too many non-finite steps in a row
    last_finite_norms: Dict[str, float]  # per variable, from the last finite step
    final_loss: float
    eval_accuracy: float
    resumed_from_step: Optional[int] = None  # set when training resumed from a checkpoint
    p90_pre_clip_norm: float = math.nan
    # For the quantiles p50, p90, p99 and max of this run's finite pre-clip global norms: the value, and
    # the fraction of finite steps whose norm exceeds it (what a global-norm clip there would have touched).
    threshold_advice: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    skipped_spikes: int = 0  # finite steps a spike guard skipped (clip.skip_spikes)
    # Each rollback on divergence (trainer.on_divergence = "rollback"): the step training diverged at, the
    # step of the checkpoint it returned to, and the batches of data it skipped from there.
    rollbacks: List[Dict[str, int]] = dataclasses.field(default_factory=list)
    # Which came first (SPIKE_FACTOR x the running median): the update the optimizer applied, or the loss.
    # None: no spike, or (updates) not measured (telemetry.update_every_n_steps = 0).
    first_update_spike_step: Optional[int] = None
    first_loss_spike_step: Optional[int] = None
    updates_measured: bool = False
    update_every_n_steps: int = 1  # the update norm's cadence: a spike between two measurements shows at the second
    noise_scale: Optional[float] = None  # B_simple at the end (EMA; telemetry.noise_scale), None if not measured
    batch_size: Optional[int] = None

    @classmethod
    def build(
        cls,
        pre_clip_norms: np.ndarray,
        losses: np.ndarray,
        clipped_steps: int,
        nonfinite_steps: int,
        first_clipped_step: int,
        variable_names: Sequence[str],
        max_variable_norms: np.ndarray,
        first_nonfinite_step: int,
        diverged_at_step: Optional[int],
        last_finite_norms: np.ndarray,
        eval_accuracy: float,
        resumed_from_step: Optional[int] = None,
        skipped_spikes: int = 0,
        rollbacks: Sequence[Dict[str, int]] = (),
        update_norms: Optional[np.ndarray] = None,
        update_every_n_steps: int = 1,
        noise_scale: Optional[float] = None,
        batch_size: Optional[int] = None,
    ) -> "GradientReport":
        finite = pre_clip_norms[np.isfinite(pre_clip_norms)]
        finite_losses = losses[np.isfinite(losses)]
        largest = int(np.argmax(max_variable_norms))
        applied_steps = max(len(pre_clip_norms) - nonfinite_steps - skipped_spikes, 1)
        quantiles = {}
        if finite.size:
            p50, p90, p99 = (float(q) for q in np.percentile(finite, [50, 90, 99]))
            quantiles = {"p50": p50, "p90": p90, "p99": p99, "max": float(finite.max())}
        updates = np.full(len(losses), np.nan, np.float32) if update_norms is None else update_norms
        measured = ~np.isnan(updates)  # NaN: not measured; 0: a skipped step, which applied none
        return cls(
            steps=len(pre_clip_norms),
            max_pre_clip_norm=quantiles.get("max", math.nan),
            median_pre_clip_norm=quantiles.get("p50", math.nan),
            p90_pre_clip_norm=quantiles.get("p90", math.nan),
            p99_pre_clip_norm=quantiles.get("p99", math.nan),
            threshold_advice={
                name: {"threshold": value, "steps_touched": float(np.mean(finite > value))}
                for name, value in quantiles.items()
            },
            clipped_fraction=clipped_steps / applied_steps,
            nonfinite_steps=nonfinite_steps,
            first_clipped_step=first_clipped_step if first_clipped_step >= 0 else None,
            largest_norm_variable=variable_names[largest],
            largest_norm_value=float(max_variable_norms[largest]),
            first_nonfinite_step=first_nonfinite_step if first_nonfinite_step >= 0 else None,
            diverged_at_step=diverged_at_step,
            last_finite_norms={name: float(v) for name, v in zip(variable_names, last_finite_norms)},
            final_loss=float(finite_losses[-1]) if finite_losses.size else float("nan"),
            eval_accuracy=eval_accuracy,
            resumed_from_step=resumed_from_step,
            skipped_spikes=skipped_spikes,
            rollbacks=[dict(r) for r in rollbacks],
            first_update_spike_step=first_spike(updates, measured & (updates > 0)),
            first_loss_spike_step=first_spike(losses, np.ones(len(losses), bool)),
            updates_measured=bool(measured.any()),
            update_every_n_steps=update_every_n_steps,
            noise_scale=noise_scale if noise_scale is not None and math.isfinite(noise_scale) else None,
            batch_size=batch_size,
        )

    def write(self, directory: str) -> str:
        path = os.path.join(directory, REPORT_FILE)
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(json.dumps(dataclasses.asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, directory: str) -> "GradientReport":
        with tf.io.gfile.GFile(os.path.join(directory, REPORT_FILE)) as f:
            return cls(**json.load(f))

    def lines(self) -> List[str]:
        first = "never" if self.first_clipped_step is None else f"step {self.first_clipped_step}"
        out = [
            f"steps: {self.steps}, final loss {self.final_loss:.4f}, eval accuracy {self.eval_accuracy:.4f}",
            f"pre-clip global norm: max {self.max_pre_clip_norm:.3f}, median {self.median_pre_clip_norm:.3f}, "
            f"p90 {self.p90_pre_clip_norm:.3f}, p99 {self.p99_pre_clip_norm:.3f}",
            f"clipped steps: {self.clipped_fraction:.1%} (first clipped: {first}); non-finite steps: {self.nonfinite_steps}",
            f"largest gradient norm: {self.largest_norm_variable} ({self.largest_norm_value:.3f})",
        ]
        if self.threshold_advice:
            (first, advice), *rest = self.threshold_advice.items()
            out.append(
                f"threshold advice: a global-norm clip at {first} = {advice['threshold']:.3g} would have touched "
                f"{advice['steps_touched']:.1%} of steps; "
                + "; ".join(f"at {name} = {a['threshold']:.3g}, {a['steps_touched']:.1%}" for name, a in rest)
            )
        if self.skipped_spikes:
            out.append(f"skipped spike steps (no update): {self.skipped_spikes}")
        for r in self.rollbacks:
            out.append(f"rolled back: diverged at step {r['at_step']}, returned to the checkpoint at step {r['to_step']}"
                       f" and skipped {r['skipped_batches']} batches")
        if self.updates_measured:
            out.append(self.spike_order())
        if self.noise_scale is not None:
            out.append(self.noise_line())
        if self.resumed_from_step is not None:
            out.append(f"resumed from the checkpoint at step {self.resumed_from_step}")
        if self.diverged_at_step is not None:
            last = math.sqrt(sum(v * v for v in self.last_finite_norms.values()))
            out.append(
                f"training diverged at step {self.diverged_at_step} (first non-finite step "
                f"{self.first_nonfinite_step}; last finite pre-clip global norm {last:.3f})"
            )
        return out

    def spike_order(self) -> str:
        """Which spiked first, the update norm or the loss, in one line."""
        every = self.update_every_n_steps
        rule = f"above {SPIKE_FACTOR:g}x the median of the {SPIKE_WINDOW} steps before" + (
            f"; the update norm measured every {every} steps" if every > 1 else "")
        update, loss = self.first_update_spike_step, self.first_loss_spike_step
        if update is None and loss is None:
            return f"spikes ({rule}): neither the update norm nor the loss"
        where = {name: "never" if at is None else f"step {at}" for name, at in (("update", update), ("loss", loss))}
        # The update norm spiked after its measurement before ``update``: a loss spike since then is not ordered.
        together = update is not None and loss is not None and update - every < loss <= update
        first = (("the same step" if every == 1 else "between two measurements of the update norm: set "
                  "telemetry.update_every_n_steps = 1 to order them") if together else
                 "the update norm first" if loss is None or (update is not None and update < loss) else "the loss first")
        return f"first spike ({rule}): update norm at {where['update']}, loss at {where['loss']}: {first}"

    def noise_line(self) -> str:
        """The gradient noise scale against the batch size: what a larger batch would buy."""
        ratio = self.noise_scale / self.batch_size if self.batch_size else math.nan
        verdict = ("the batch is below it: a larger one would cut the steps needed nearly in proportion" if ratio > 2 else
                   "the batch is well above it: a larger one would add little per step" if ratio < 0.5 else
                   "the batch is near it: about where larger batches stop paying off")
        return (f"gradient noise scale B_simple {self.noise_scale:.3g} at the end (McCandlish et al. 2018), batch "
                f"{self.batch_size}: {verdict}")
