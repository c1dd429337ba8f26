"""Trainer settings, rebuilt from the Trainer's ``custom_config``."""
from __future__ import annotations

import dataclasses
from typing import Literal, Tuple

from components.common.errors import ConfigError

# The Trainer's custom_config beside its sections: where resumable checkpoints go, and the settings of
# earlier components it records with its run (TensorBoard's HParams).
CHECKPOINT_ROOT_KEY = "checkpoint_root"
UPSTREAM_KEYS = ("transform",)

ClipName = Literal["none", "value", "norm", "global_norm", "adaptive"]
# The clip settings each strategy reads; the others mean nothing for it.
STRATEGY_SETTINGS = {
    "none": (), "value": ("lo", "hi"), "norm": ("threshold",), "global_norm": ("threshold",),
    "adaptive": ("percentile", "window"),
}


@dataclasses.dataclass(frozen=True)
class ClipOptions:
    """Keras' names for the same ideas: ``value`` = clipvalue (bounds lo, hi),
    ``norm`` = clipnorm (per tensor), ``global_norm`` = global_clipnorm."""

    strategy: ClipName = "global_norm"
    # norm / global_norm: the largest norm let through. 0.5 clips the default model where its
    # gradients are largest, mostly early on (bench/clip_threshold.py; docs/benchmarks.md).
    threshold: float = 0.5
    lo: float = -1.0  # value: lower bound of each gradient element
    hi: float = 1.0  # value: upper bound
    percentile: float = 90.0  # adaptive: threshold = this percentile of recent pre-clip norms
    window: int = 1000  # adaptive: how many recent steps that percentile covers
    max_nonfinite_steps: int = 10  # stop after this many consecutive NaN/Inf steps

    def __post_init__(self) -> None:
        if self.threshold <= 0:
            raise ConfigError(f"clip.threshold must be > 0 (got {self.threshold}); e.g. 0.5")
        if self.lo >= self.hi:
            raise ConfigError(f"clip.lo must be below clip.hi (got lo={self.lo}, hi={self.hi})")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"clip.percentile must be in (0, 100] (got {self.percentile})")
        if self.window < 1:
            raise ConfigError(f"clip.window must be >= 1 (got {self.window})")
        if self.max_nonfinite_steps < 1:
            raise ConfigError(f"clip.max_nonfinite_steps must be >= 1 (got {self.max_nonfinite_steps})")


@dataclasses.dataclass(frozen=True)
class TelemetryOptions:
    histogram_every_n_steps: int = 100  # gradient and weight histograms cadence; 0 turns them off
    scalars: bool = True  # per-step scalars (loss, norms, clip scale, ...)
    clip_rate_window: int = 100  # clip/clipped_fraction_recent: the fraction of the last this many finite steps clipped

    def __post_init__(self) -> None:
        if self.clip_rate_window < 1:
            raise ConfigError(f"telemetry.clip_rate_window must be >= 1 (got {self.clip_rate_window}); e.g. 100")
        if self.histogram_every_n_steps < 0:
            raise ConfigError(
                f"telemetry.histogram_every_n_steps must be >= 0 (got {self.histogram_every_n_steps}); 0 turns histograms off"
            )


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    hidden_units: Tuple[int, ...] = (512, 256)
    optimizer: Literal["sgd", "adam"] = "adam"
    learning_rate: float = 0.001
    # cosine: from learning_rate down to 0 over the run's steps (final accuracy steadier across seeds)
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"  # mse: on one-hot labels, as the classic demo
    init: Literal["glorot_uniform", "truncated_normal"] = "glorot_uniform"  # truncated_normal: stddev 0.1, the demo's
    batch_size: int = 128
    epochs: int = 3
    steps_per_call: int = 100  # training steps per tf.function call (fewer host round trips)
    checkpoint_every_n_steps: int = 500  # resumable checkpoints; 0 turns them off
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "steps_per_call"):
            if getattr(self, name) < 1:
                raise ConfigError(f"trainer.{name} must be >= 1 (got {getattr(self, name)})")
        if self.checkpoint_every_n_steps < 0:
            raise ConfigError(f"trainer.checkpoint_every_n_steps must be >= 0 (got {self.checkpoint_every_n_steps})")
        if self.learning_rate <= 0:
            raise ConfigError(f"trainer.learning_rate must be > 0 (got {self.learning_rate})")
        if not self.hidden_units or min(self.hidden_units) < 1:
            raise ConfigError(f"trainer.hidden_units must be a non-empty list of widths >= 1 (got {list(self.hidden_units)})")
