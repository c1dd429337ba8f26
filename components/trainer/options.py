"""Trainer settings, rebuilt from the Trainer's ``custom_config``."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Dict, Literal, Mapping, Tuple

from components.common.errors import ConfigError
from components.common.typed import from_dict

# The Trainer's custom_config beside its sections: where resumable checkpoints go, and the settings of
# earlier components it records with its run (TensorBoard's HParams).
CHECKPOINT_ROOT_KEY = "checkpoint_root"
NAME_KEY = "name"  # the Trainer's component id (a sweep's Trainer.<point>): what its progress lines start with
NOT_SETTINGS = (CHECKPOINT_ROOT_KEY, NAME_KEY)  # where and who, not how to train: runs are not named by them
UPSTREAM_KEYS = ("transform",)



@dataclasses.dataclass(frozen=True)
class Strategy:
    """A clip strategy as the config knows it: the class in clipping.py that implements it, and the
    ``clip.*`` settings it reads, which are its constructor's arguments by the same names. The others mean
    nothing for it and are neither validated nor recorded with its runs."""

    implementation: str
    settings: Tuple[str, ...] = ()
    # Has a norm bound in force on every step (``ClipStats.threshold`` finite, logged as clip/threshold):
    # the Clipping dashboard gives it a chart.
    has_threshold: bool = False


# The one registry of clip strategies, without TensorFlow so that settings are checked before it loads:
# ClipOptions and the sweep validate names against it, the CLI lists it, clipping.make_strategy builds from it.
STRATEGIES: Dict[str, Strategy] = {
    "none": Strategy("NoClip"),
    "value": Strategy("ClipByValue", ("lo", "hi")),
    "norm": Strategy("ClipByNorm", ("threshold",), has_threshold=True),
    "global_norm": Strategy("ClipByGlobalNorm", ("threshold",), has_threshold=True),
    "percentile": Strategy("PercentileClip", ("percentile", "window"), has_threshold=True),
    "agc": Strategy("UnitwiseAdaptiveClip", ("ratio", "eps")),
    "zclip": Strategy("ZClip", ("alpha", "z_threshold", "warmup_steps", "first_step_scale"), has_threshold=True),
}
# SkipOnSpike's settings, read (and validated) only where clip.skip_spikes is on.
SPIKE_SETTINGS = ("spike_sigmas", "spike_window", "max_consecutive_spikes")


def unread_clip_settings(strategy: str) -> set:
    """The ``clip.*`` settings (their ``--set`` names) a strategy does not read: left out where runs are
    shown side by side, so a ``none`` run shows no threshold."""
    read = STRATEGIES[strategy].settings if strategy in STRATEGIES else ()
    return {f"clip.{name}" for spec in STRATEGIES.values() for name in spec.settings if name not in read}


def reads_threshold(strategy: str) -> bool:
    return "threshold" in STRATEGIES[strategy].settings


# Old strategy names, refused with the new name rather than guessed at.
RENAMED_STRATEGIES = {
    "adaptive": "'percentile' (AutoClip: a global-norm clip at a percentile of recent norms; "
    "'agc' is unit-wise adaptive clipping, optax's adaptive_grad_clip)",
}


def check_strategy(name: str, where: str) -> None:
    """A renamed or unknown strategy name is one line naming ``where`` it was given and what to use."""
    if name in RENAMED_STRATEGIES:
        raise ConfigError(f"{where}: {name!r} is renamed: use {RENAMED_STRATEGIES[name]}")
    if name not in STRATEGIES:
        raise ConfigError(f"{where}: unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")


@dataclasses.dataclass(frozen=True)
class ClipOptions:
    """Keras' names for the same ideas: ``value`` = clipvalue (bounds lo, hi),
    ``norm`` = clipnorm (per tensor), ``global_norm`` = global_clipnorm."""

    # A str checked against STRATEGIES, not a Literal: a renamed strategy gets its own message.
    strategy: str = "global_norm"
    # norm / global_norm: the largest norm let through. 0.5 clips the default model where its
    # gradients are largest, mostly early on (bench/clip_threshold.py; docs/benchmarks.md).
    threshold: float = 0.5
    lo: float = -1.0  # value: lower bound of each gradient element
    hi: float = 1.0  # value: upper bound
    percentile: float = 90.0  # percentile: threshold = this percentile of recent pre-clip norms
    window: int = 1000  # percentile: how many recent steps that percentile covers
    ratio: float = 0.01  # agc: the largest gradient-to-weight norm ratio of a unit (the paper's lambda)
    eps: float = 1e-3  # agc: weight norms below this count as this (zero-initialised biases still move)
    # zclip (ZClip, arXiv 2504.02507): the paper's defaults. A norm whose z-score against EMAs of the
    # norm's mean and variance passes z_threshold is clipped; no threshold to choose.
    alpha: float = 0.97  # zclip: EMA smoothing of the mean and variance
    z_threshold: float = 2.5  # zclip: the z-score above which a norm is clipped
    warmup_steps: int = 25  # zclip: steps that seed the statistics, each bounded by the smallest norm before it
    first_step_scale: float = 0.01  # zclip: the first step, with nothing to judge it by, applies this fraction of its norm
    max_consecutive_nonfinite: int = 10  # stop after this many NaN/Inf steps in a row (each is skipped)
    # SkipOnSpike (OLMo-core's defaults): skip a step whose loss or pre-clip norm is more than spike_sigmas
    # standard deviations above the mean of the last spike_window applied steps; a run of them is a divergence.
    skip_spikes: bool = False
    spike_sigmas: float = 6.0
    spike_window: int = 128
    max_consecutive_spikes: int = 20  # then training stops (or rolls back: trainer.on_divergence)
    RENAMED: ClassVar[Dict[str, str]] = {"max_nonfinite_steps": "max_consecutive_nonfinite"}

    def __post_init__(self) -> None:
        check_strategy(self.strategy, "clip.strategy")
        # Only the settings something reads mean anything: the active strategy's, and the spike guard's where it is on.
        for setting in (*STRATEGIES[self.strategy].settings, *(SPIKE_SETTINGS if self.skip_spikes else ())):
            valid, rule, example = _CLIP_CHECKS[setting](self)
            if not valid:
                hint = f"; e.g. {example}" if example else ""
                raise ConfigError(f"clip.{setting} must be {rule} (got {getattr(self, setting)}){hint}")
        if self.max_consecutive_nonfinite < 1:
            raise ConfigError(f"clip.max_consecutive_nonfinite must be >= 1 (got {self.max_consecutive_nonfinite})")


# Setting -> (is it valid, what it must be, an example or ""); read for the active strategy's settings only.
_CLIP_CHECKS: Dict[str, Callable[[ClipOptions], Tuple[bool, str, str]]] = {
    "threshold": lambda o: (o.threshold > 0, "> 0", "0.5"),
    "lo": lambda o: (o.lo < o.hi, f"below clip.hi={o.hi}", ""),
    "hi": lambda o: (o.hi > o.lo, f"above clip.lo={o.lo}", ""),
    "percentile": lambda o: (0 < o.percentile <= 100, "in (0, 100]", "90"),
    "window": lambda o: (o.window >= 1, ">= 1", "1000"),
    "ratio": lambda o: (o.ratio > 0, "> 0", "0.01"),
    "eps": lambda o: (o.eps > 0, "> 0", "0.001"),
    "alpha": lambda o: (0 < o.alpha < 1, "in (0, 1)", "0.97"),
    "z_threshold": lambda o: (o.z_threshold > 0, "> 0", "2.5"),
    "warmup_steps": lambda o: (o.warmup_steps >= 1, ">= 1", "25"),
    "first_step_scale": lambda o: (0 < o.first_step_scale <= 1, "in (0, 1]", "0.01"),
    "spike_sigmas": lambda o: (o.spike_sigmas > 0, "> 0", "6"),
    "spike_window": lambda o: (o.spike_window >= 4, ">= 4 (half of it must hold two steps)", "128"),
    "max_consecutive_spikes": lambda o: (o.max_consecutive_spikes >= 1, ">= 1", "20"),
}


@dataclasses.dataclass(frozen=True)
class TelemetryOptions:
    histogram_every_n_steps: int = 100  # gradient and weight histograms cadence; 0 turns them off
    scalars: bool = True  # per-step scalars (loss, norms, clip scale, ...)
    clip_rate_window: int = 100  # clip/clipped_fraction_recent: the fraction of the last this many finite steps clipped
    # The update the optimizer applied (its norm, its ratio to the weights), every this many steps; 0 turns it
    # off. Measuring it snapshots the weights before the step, which every step costs more than all the other
    # telemetry together: the default samples, at the cadence that keeps its cost within 3% (docs/benchmarks.md).
    update_every_n_steps: int = 20
    noise_scale: bool = False  # the gradient noise scale B_simple (components/trainer/noise_scale.py)

    def __post_init__(self) -> None:
        if self.clip_rate_window < 1:
            raise ConfigError(f"telemetry.clip_rate_window must be >= 1 (got {self.clip_rate_window}); e.g. 100")
        if self.update_every_n_steps < 0:
            raise ConfigError(
                f"telemetry.update_every_n_steps must be >= 0 (got {self.update_every_n_steps}); 0 turns update norms off"
            )
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
    # --runner kubeflow-v2: the Trainer as a Vertex AI Training job of this many replicas (a chief and
    # workers - 1 workers, each a machine_type), trained with MultiWorkerMirroredStrategy. 1: one process.
    workers: int = 1
    machine_type: str = "n1-standard-4"
    # A split whose transformed records take more than this streams from local disk in buckets of
    # about a quarter of it (components/trainer/data.py); below it, the split is held in memory (faster).
    memory_budget_mb: int = 256
    # When a guard says stop (clip.max_consecutive_nonfinite or clip.max_consecutive_spikes in a row):
    # "stop" ends training there; "rollback" returns to the newest checkpoint at least rollback_steps_back
    # steps before, skips the next rollback_skip_batches batches of data (PaLM, arXiv 2204.02311 section 5.1)
    # and trains on, at most max_rollbacks times.
    on_divergence: Literal["stop", "rollback"] = "stop"
    rollback_steps_back: int = 100
    rollback_skip_batches: int = 200
    max_rollbacks: int = 3

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "steps_per_call", "workers", "memory_budget_mb"):
            if getattr(self, name) < 1:
                raise ConfigError(f"trainer.{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("rollback_steps_back", "rollback_skip_batches", "max_rollbacks"):
            if getattr(self, name) < 0:
                raise ConfigError(f"trainer.{name} must be >= 0 (got {getattr(self, name)})")
        if self.on_divergence == "rollback" and not self.checkpoint_every_n_steps:
            raise ConfigError("trainer.on_divergence = \"rollback\" returns to a checkpoint: set "
                              "trainer.checkpoint_every_n_steps > 0 (e.g. 100), or on_divergence = \"stop\"")
        # Sparser checkpoints can leave the one returned to far before the spike, and skipping
        # rollback_skip_batches from there lands before the spike again.
        if self.on_divergence == "rollback" and self.checkpoint_every_n_steps > self.rollback_steps_back:
            raise ConfigError(
                f"trainer.on_divergence = \"rollback\" needs a checkpoint at least every rollback_steps_back steps: "
                f"trainer.checkpoint_every_n_steps = {self.checkpoint_every_n_steps} > trainer.rollback_steps_back = "
                f"{self.rollback_steps_back}; set trainer.checkpoint_every_n_steps={self.rollback_steps_back}"
            )
        if self.checkpoint_every_n_steps < 0:
            raise ConfigError(f"trainer.checkpoint_every_n_steps must be >= 0 (got {self.checkpoint_every_n_steps})")
        if self.learning_rate <= 0:
            raise ConfigError(f"trainer.learning_rate must be > 0 (got {self.learning_rate})")
        if not self.hidden_units or min(self.hidden_units) < 1:
            raise ConfigError(f"trainer.hidden_units must be a non-empty list of widths >= 1 (got {list(self.hidden_units)})")


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """What a training session reads: the Trainer's three sections, which always travel together."""

    trainer: TrainerOptions = TrainerOptions()
    clip: ClipOptions = ClipOptions()
    telemetry: TelemetryOptions = TelemetryOptions()

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any]) -> "TrainingOptions":
        """The sections of the Trainer's ``custom_config`` (JSON), checked as the config file's are."""
        return from_dict(cls, {name: custom_config[name] for name in SECTIONS})


SECTIONS = tuple(field.name for field in dataclasses.fields(TrainingOptions))
