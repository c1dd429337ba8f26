"""TFX Trainer entry point (GenericExecutor), referenced by import path.

Reads its settings from ``custom_config``, trains with the clip strategy and
telemetry into the ModelRun artifact, writes the gradient report there, and
exports the serving model.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx.components.trainer.fn_args_utils import FnArgs

from components.common.typed import from_dict
from components.trainer import clipping, data, export
from components.trainer.loop import TrainingLoop, make_loss
from components.trainer.model import MLP
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions
from components.trainer.report import GradientReport
from components.trainer.telemetry import Telemetry

log = logging.getLogger(__name__)


def parse_custom_config(custom_config: Mapping[str, Any]):
    return (
        from_dict(TrainerOptions, custom_config["trainer"], "trainer"),
        from_dict(ClipOptions, custom_config["clip"], "clip"),
        from_dict(TelemetryOptions, custom_config["telemetry"], "telemetry"),
    )


def make_optimizer(options: TrainerOptions):
    if options.optimizer == "sgd":
        return tf_keras.optimizers.SGD(options.learning_rate)
    return tf_keras.optimizers.Adam(options.learning_rate)


def train(
    train_split, eval_split, logdir: str, options: TrainerOptions, clip: ClipOptions, telemetry_options: TelemetryOptions
) -> tuple[MLP, GradientReport]:
    """Trains the MLP on in-memory splits; returns it and its gradient report."""
    tf.random.set_seed(options.seed)
    model = MLP(options.hidden_units, options.init, options.seed)
    telemetry = Telemetry(logdir, model.variable_names, telemetry_options)
    loop = TrainingLoop(
        model,
        make_optimizer(options),
        make_loss(options.loss),
        clipping.make_strategy(clip),
        telemetry,
        options.batch_size,
        clip.max_nonfinite_steps,
    )
    losses, norms = [], []
    diverged_at = None
    metrics = {"accuracy": float("nan")}
    for epoch in range(options.epochs):
        result = loop.run_epoch(*train_split, options.steps_per_call, seed=options.seed + epoch)
        losses.append(result.losses)
        norms.append(result.pre_clip_norms)
        metrics = loop.evaluate(*eval_split)
        telemetry.record_eval(int(loop.step.numpy()), metrics)
        log.info("epoch %d: train loss %.4f, eval %s", epoch + 1, float(np.nanmean(result.losses)) if np.isfinite(result.losses).any() else math.nan, metrics)
        if result.stopped:
            diverged_at = int(loop.step.numpy()) - 1
            break
    telemetry.flush()
    report = GradientReport.build(
        pre_clip_norms=np.concatenate(norms),
        losses=np.concatenate(losses),
        clipped_steps=int(loop.clipped_steps.numpy()),
        nonfinite_steps=int(loop.nonfinite_steps.numpy()),
        first_clipped_step=int(loop.first_clipped_step.numpy()),
        variable_names=model.variable_names,
        max_variable_norms=loop.max_pre_clip_norms.numpy(),
        first_nonfinite_step=int(loop.first_nonfinite_step.numpy()),
        diverged_at_step=diverged_at,
        last_finite_norms=loop.last_finite_norms.numpy(),
        eval_accuracy=metrics["accuracy"],
    )
    return model, report


def run_fn(fn_args: FnArgs) -> None:
    options, clip, telemetry_options = parse_custom_config(fn_args.custom_config)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train_split = data.load_split(fn_args.train_files, transform_output)
    eval_split = data.load_split(fn_args.eval_files, transform_output)
    model, report = train(train_split, eval_split, fn_args.model_run_dir, options, clip, telemetry_options)
    path = report.write(fn_args.model_run_dir)
    print("Gradient report (" + path + "):\n  " + "\n  ".join(report.lines()), flush=True)
    export.export_serving_model(model, transform_output, fn_args.serving_model_dir)
