"""The training session: one model trained on two splits, the way the Trainer component and the
tests and benches alike run it. It builds the model, the loop and the clip strategy from the options,
resumes from a checkpoint where one is, trains the epochs (rolling back where the guards say so),
evaluates after each, and returns the model with its gradient report. What TFX hands the Trainer
(files, artifacts, custom_config) is run_fn.py's business, not this module's.
"""
from __future__ import annotations

import logging
import math
import tempfile
import time
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

import numpy as np
import tensorflow as tf
import tf_keras

from components.common.typed import flatten, pick, to_dict
from components.trainer import clipping, dashboards, distribute
from components.trainer.checkpoint import Checkpointer, History, Restored
from components.trainer.loop import EpochResult, TrainingLoop, make_loss
from components.trainer.model import MLP
from components.trainer.options import TrainerOptions, TrainingOptions
from components.trainer.report import GradientReport
from components.trainer.rollback import Rollback, checkpoints_to_keep
from components.trainer.telemetry import Telemetry

log = logging.getLogger(__name__)


def make_optimizer(options: TrainerOptions, total_steps: int):
    """Keras' legacy optimizers: they update each variable with one fused TF kernel
    (``ResourceApplyAdam``), where the current Keras Adam runs a chain of separate
    element-wise ops, far slower per step (docs/benchmarks.md, "Levers tried").
    Same update rule, same defaults.

    ``lr_schedule`` cosine decays the rate to 0 over ``total_steps``: the default
    model's accuracy is higher and steadier across seeds with it (same page)."""
    schedules = {
        "constant": lambda rate: rate,
        "cosine": lambda rate: tf_keras.optimizers.schedules.CosineDecay(rate, decay_steps=total_steps),
    }
    optimizers = {"sgd": tf_keras.optimizers.legacy.SGD, "adam": tf_keras.optimizers.legacy.Adam}
    learning_rate = pick(schedules, options.lr_schedule, "trainer.lr_schedule")(options.learning_rate)
    return pick(optimizers, options.optimizer, "trainer.optimizer")(learning_rate)


def epoch_line(
    name: str, epoch: int, epochs: int, step: int, result, accuracy: float, clipped: int, seconds: float, spikes: int = 0,
) -> str:
    """What the terminal shows after each epoch: plain text, no control codes, so logs and CI read it too."""
    finite_losses, finite_norms = (a[np.isfinite(a)] for a in (result.losses, result.norms))
    steps = len(result.losses)
    applied = max(finite_norms.size - spikes, 1)
    return (
        f"{name}: epoch {epoch + 1}/{epochs}: step {step}, loss {finite_losses.mean() if finite_losses.size else math.nan:.4f}, "
        f"eval accuracy {accuracy:.4f}, pre-clip norm median {np.median(finite_norms) if finite_norms.size else math.nan:.3g}, "
        f"clipped {clipped / applied:.0%} of steps" + (f", skipped {spikes} spike step(s)" if spikes else "")
        + f", {steps / max(seconds, 1e-9):.0f} steps/s"
    )


class SaveCheckpoints:
    """The loop's ``after_call``: saves the training state each time a multiple of
    ``checkpoint_every_n_steps`` has passed, with the history up to that step."""

    def __init__(self, checkpointer: Checkpointer, loop: TrainingLoop, telemetry: Telemetry, logdir: str):
        self.checkpointer, self.loop, self.telemetry, self.logdir = checkpointer, loop, telemetry, logdir
        self.last_step = int(loop.step.numpy())

    def during(self, epoch: int, before: History) -> Callable[[int, EpochResult], None]:
        def after_call(next_batch: int, so_far: EpochResult) -> None:
            step = int(self.loop.step.numpy())
            if self.checkpointer.due(self.last_step, step):
                self.telemetry.flush()  # events up to the checkpoint are on disk before it is
                self.checkpointer.save(step, epoch, next_batch, before.extended(so_far), self.logdir)
            self.last_step = step

        return after_call


def resume(
    checkpointer: Optional[Checkpointer], telemetry: Telemetry, name: str, distribution: tf.distribute.Strategy,
) -> tuple[Optional[Restored], History]:
    """The state of an interrupted run, if a readable checkpoint holds one (the loop's variables are
    restored in place), and its history; else nothing and an empty history. Several workers resume
    from the same step: the newest one all of them have."""
    restored = None
    if checkpointer:
        agreed = distribute.agreed_step(distribution, checkpointer.newest_step())
        restored = checkpointer.restore(at_most=agreed) if agreed >= 0 else None
    if restored is None:
        return None, History()
    log.warning("resuming from the checkpoint at step %d (%s)", restored.step, checkpointer.directory)
    print(f"{name}: resuming from the checkpoint at step {restored.step}", flush=True)
    telemetry.import_previous(restored.logdir, before_step=restored.step)
    return restored, restored.history


def build_loop(
    model: MLP, options: TrainingOptions, telemetry: Telemetry, train_size: int, distribution: tf.distribute.Strategy,
) -> TrainingLoop:
    trainer = options.trainer
    steps = trainer.epochs * -(-train_size // trainer.batch_size)
    return TrainingLoop(
        model, make_optimizer(trainer, total_steps=steps), make_loss(trainer.loss), clipping.make_strategy(options.clip),
        telemetry, trainer.batch_size, options.telemetry.clip_rate_window, distribution,
    )


def start(
    options: TrainingOptions, logdir: str, train_size: int, distribution: tf.distribute.Strategy,
    upstream_settings: Mapping[str, Any], name: str,
) -> tuple[MLP, Telemetry, TrainingLoop]:
    """A fresh model, its telemetry and loop; the run's dashboards and settings written before step 0."""
    trainer = options.trainer
    with distribution.scope():  # the variables of the model, the optimizer and the loop, mirrored on each replica
        model = MLP(trainer.hidden_units, trainer.init, trainer.seed)
        telemetry = Telemetry(logdir, model.variable_names, options.telemetry)
        loop = build_loop(model, options, telemetry, train_size, distribution)
    settings = flatten({**upstream_settings, "trainer": to_dict(trainer), "clip": to_dict(options.clip)})
    telemetry.record_start(
        dashboards.clipping_layout(model.variable_names, options.telemetry, options.clip),
        dashboards.hparam_values(settings), name,
    )
    return model, telemetry, loop


def train_epochs(
    loop: TrainingLoop, options: TrainerOptions, train_split, eval_split, name: str, restored: Optional[Restored],
    history: History, saver: Optional[SaveCheckpoints], rollback: Optional[Rollback],
) -> tuple[History, dict]:
    """The epochs left (all, or those after ``restored``), each evaluated and reported in a line. Where
    the guards stop training, a ``rollback`` may move it back to a checkpoint and on from there."""
    metrics = {"accuracy": float("nan")}
    epoch, first = (restored.epoch, restored.batch) if restored else (0, 0)
    while epoch < options.epochs:
        clipped_before, spikes_before = int(loop.clipped_steps.numpy()), int(loop.skipped_spikes.numpy())
        started = time.perf_counter()
        after_call = saver.during(epoch, history) if saver else None
        result = loop.run_epoch(train_split, options.steps_per_call, options.seed + epoch, first, after_call)
        seconds = time.perf_counter() - started
        history = history.extended(result)
        metrics = loop.evaluate(eval_split)
        loop.telemetry.record_eval(int(loop.step.numpy()), metrics)
        line = epoch_line(name, epoch, options.epochs, int(loop.step.numpy()), result, metrics["accuracy"],
                          int(loop.clipped_steps.numpy()) - clipped_before, seconds,
                          int(loop.skipped_spikes.numpy()) - spikes_before)
        log.info(line)
        print(line, flush=True)
        epoch, first = epoch + 1, 0
        if result.stopped:
            back = rollback.after_divergence(history, loop.telemetry.logdir) if rollback else None
            if back is None:
                break
            epoch, first, history = back
    return history, metrics


def train(
    train_split, eval_split, logdir: str, options: TrainingOptions, checkpoints: Optional[str] = None,
    upstream_settings: Mapping[str, Any] = MappingProxyType({}), name: str = "Trainer",
    distribution: Optional[tf.distribute.Strategy] = None,
) -> tuple[MLP, GradientReport]:
    """Trains the MLP on two splits (components/trainer/data.py); returns it and its gradient report.

    With ``checkpoints`` (a folder), training saves its state every
    ``trainer.checkpoint_every_n_steps`` steps and resumes from there.
    ``upstream_settings`` (e.g. ``{"transform": {...}}``) are recorded with
    the run's own settings in TensorBoard's HParams. ``name`` starts its progress lines.
    Under ``distribution`` (components/trainer/distribute.py) every worker trains the same model on its
    share of each batch; a worker other than the chief logs to a folder of its own and checkpoints to
    one beside ``checkpoints`` (``<checkpoints>-worker-1``), which the chief's clean-up leaves alone.
    """
    distribution = distribution or tf.distribute.get_strategy()
    trainer = options.trainer
    logdir = distribute.own_path(logdir)
    if trainer.on_divergence == "rollback" and not checkpoints:  # rollback returns to checkpoints: keep some
        checkpoints = tempfile.mkdtemp(prefix="clipflow-rollback-")
    if checkpoints and not distribute.is_chief():
        checkpoints = "-".join([checkpoints.rstrip("/"), *map(str, distribute.task())])  # beside the chief's
    model, telemetry, loop = start(options, logdir, train_split.size, distribution, upstream_settings, name)
    checkpointer = None
    if checkpoints:
        checkpointer = Checkpointer(checkpoints, loop.checkpoint_objects(), trainer.checkpoint_every_n_steps,
                                    keep=checkpoints_to_keep(trainer))
    restored, history = resume(checkpointer, telemetry, name, distribution)
    if restored is None:
        telemetry.record_rollback(0, 0)  # none yet: the guards' chart has its line from the start
    saver = SaveCheckpoints(checkpointer, loop, telemetry, logdir) if checkpointer else None
    rollback = None
    if checkpointer and trainer.on_divergence == "rollback":
        rollback = Rollback(trainer, checkpointer, loop, -(-train_split.size // trainer.batch_size), name)
        if restored is None:  # the initial state: an early divergence has somewhere to return to
            checkpointer.save(0, 0, 0, history, logdir)
    try:
        history, metrics = train_epochs(loop, trainer, train_split, eval_split, name, restored, history, saver, rollback)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as err:
        if distribute.is_multi_worker():  # a peer is gone: its collective ops failed here
            raise distribute.lost_worker(err) from None
        raise
    report = loop.gradient_report(history, metrics["accuracy"], restored.step if restored else None)
    telemetry.record_end(int(loop.step.numpy()), dashboards.final_metrics(report), loop.stopped)
    telemetry.flush()
    if checkpointer:
        checkpointer.remove()  # done: a later run with caching off trains afresh
    return model, report
