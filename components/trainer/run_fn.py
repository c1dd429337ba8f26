"""TFX Trainer entry point (GenericExecutor), referenced by import path.

Reads its settings from ``custom_config``, trains with the clip strategy and
telemetry into the ModelRun artifact, writes the gradient report there, and
exports the serving model.
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
import tensorflow_transform as tft
import tf_keras
from tfx.components.trainer.fn_args_utils import FnArgs

from components.common.typed import flatten, from_dict, pick, to_dict
from components.trainer import clipping, dashboards, data, distribute, export
from components.trainer.checkpoint import Checkpointer, History, Restored, checkpoint_dir
from components.trainer.loop import EpochResult, TrainingLoop, make_loss
from components.trainer.model import MLP
from components.trainer.options import (
    CHECKPOINT_ROOT_KEY, NAME_KEY, UPSTREAM_KEYS, ClipOptions, TelemetryOptions, TrainerOptions,
)
from components.trainer.report import GradientReport
from components.trainer.rollback import Rollback, checkpoints_to_keep
from components.trainer.telemetry import Telemetry

log = logging.getLogger(__name__)


def parse_custom_config(custom_config: Mapping[str, Any]):
    return (
        from_dict(TrainerOptions, custom_config["trainer"], "trainer"),
        from_dict(ClipOptions, custom_config["clip"], "clip"),
        from_dict(TelemetryOptions, custom_config["telemetry"], "telemetry"),
    )


def make_optimizer(options: TrainerOptions, total_steps: int):
    """Keras' legacy optimizers: they update each variable with one fused TF kernel
    (``ResourceApplyAdam``), where the current Keras Adam runs a chain of separate
    element-wise ops: 826 vs 467 training steps/s for the default model on the
    2-core CPU (docs/benchmarks.md). Same update rule, same defaults.

    ``lr_schedule`` cosine decays the rate to 0 over ``total_steps``: over
    seeds 0-3 the default model's eval accuracy read 0.9785-0.9803 with it,
    0.9731-0.9798 at a constant rate (docs/benchmarks.md)."""
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
    model: MLP, options: TrainerOptions, clip: ClipOptions, telemetry: Telemetry, train_size: int,
    distribution: tf.distribute.Strategy,
) -> TrainingLoop:
    steps = options.epochs * -(-train_size // options.batch_size)
    return TrainingLoop(
        model, make_optimizer(options, total_steps=steps), make_loss(options.loss), clipping.make_strategy(clip),
        telemetry, options.batch_size, telemetry.options.clip_rate_window, distribution,
    )


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
    train_split, eval_split, logdir: str, options: TrainerOptions, clip: ClipOptions, telemetry_options: TelemetryOptions,
    checkpoints: Optional[str] = None, upstream_settings: Mapping[str, Any] = MappingProxyType({}), name: str = "Trainer",
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
    logdir = distribute.own_path(logdir)
    if options.on_divergence == "rollback" and not checkpoints:  # rollback returns to checkpoints: keep some
        checkpoints = tempfile.mkdtemp(prefix="clipflow-rollback-")
    if checkpoints and not distribute.is_chief():
        checkpoints = "-".join([checkpoints.rstrip("/"), *map(str, distribute.task())])  # beside the chief's
    with distribution.scope():  # the variables of the model, the optimizer and the loop, mirrored on each replica
        model = MLP(options.hidden_units, options.init, options.seed)
        telemetry = Telemetry(logdir, model.variable_names, telemetry_options)
        loop = build_loop(model, options, clip, telemetry, train_split.size, distribution)
    settings = flatten({**upstream_settings, "trainer": to_dict(options), "clip": to_dict(clip)})
    telemetry.record_start(
        dashboards.clipping_layout(model.variable_names, telemetry_options, clip),
        dashboards.hparam_values(settings), name,
    )
    checkpointer = None
    if checkpoints:
        checkpointer = Checkpointer(checkpoints, loop.checkpoint_objects(), options.checkpoint_every_n_steps,
                                    keep=checkpoints_to_keep(options))
    restored, history = resume(checkpointer, telemetry, name, distribution)
    if restored is None:
        telemetry.record_rollback(0, 0)  # none yet: the guards' chart has its line from the start
    saver = SaveCheckpoints(checkpointer, loop, telemetry, logdir) if checkpointer else None
    rollback = None
    if checkpointer and options.on_divergence == "rollback":
        rollback = Rollback(options, checkpointer, loop, -(-train_split.size // options.batch_size), name)
        if restored is None:  # the initial state: an early divergence has somewhere to return to
            checkpointer.save(0, 0, 0, history, logdir)
    try:
        history, metrics = train_epochs(loop, options, train_split, eval_split, name, restored, history, saver, rollback)
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


def train_model(
    fn_args: FnArgs, options: TrainerOptions, clip: ClipOptions, telemetry_options: TelemetryOptions,
    train_split: data.Split, eval_split: data.Split, name: str, distribution: tf.distribute.Strategy,
) -> tuple[MLP, GradientReport]:
    """``train`` with what the Trainer component adds: resumable checkpoints under the pipeline's
    checkpoint root (keyed by settings and inputs), upstream settings and the component's name."""
    checkpoints = None
    if options.checkpoint_every_n_steps and fn_args.custom_config.get(CHECKPOINT_ROOT_KEY):
        checkpoints = checkpoint_dir(
            fn_args.custom_config[CHECKPOINT_ROOT_KEY],
            {k: v for k, v in fn_args.custom_config.items() if k != CHECKPOINT_ROOT_KEY},
            [fn_args.transform_output, *fn_args.train_files, *fn_args.eval_files],
        )
    return train(
        train_split, eval_split, fn_args.model_run_dir, options, clip, telemetry_options, checkpoints,
        {key: fn_args.custom_config[key] for key in UPSTREAM_KEYS if key in fn_args.custom_config},
        name, distribution,
    )


def run_fn(fn_args: FnArgs) -> None:
    distribution = distribute.strategy_from_environment()  # first: before any other TensorFlow op
    options, clip, telemetry_options = parse_custom_config(fn_args.custom_config)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    budget = options.memory_budget_mb * 2**20
    name = fn_args.custom_config.get(NAME_KEY, "Trainer")
    with data.open_split(fn_args.train_files, transform_output, budget) as train_split, \
            data.open_split(fn_args.eval_files, transform_output, budget) as eval_split:
        for split_name, split in (("training", train_split), ("eval", eval_split)):
            if isinstance(split, data.SpilledSplit):  # say why this run reads its disk
                print(f"{name}: the {split_name} split ({split.size:,} records) is over trainer.memory_budget_mb="
                      f"{options.memory_budget_mb} once transformed: streaming it from local disk in "
                      f"{len(split.paths)} buckets", flush=True)
        model, report = train_model(fn_args, options, clip, telemetry_options, train_split, eval_split, name,
                                    distribution)
    serving_model_dir = distribute.own_path(fn_args.serving_model_dir)
    export.export_serving_model(model, transform_output, serving_model_dir)  # every worker: saving may be collective
    if not distribute.is_chief():
        tf.io.gfile.rmtree(serving_model_dir)
        return
    path = report.write(fn_args.model_run_dir)
    print("Gradient report (" + path + "):\n  " + "\n  ".join(report.lines()), flush=True)
