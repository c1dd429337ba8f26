"""TFX Trainer entry point (GenericExecutor), referenced by import path: the adapter between what
TFX hands the Trainer and the training session (session.py).

It reads the settings from ``custom_config``, opens the transformed splits, keys resumable
checkpoints by settings and inputs, trains into the ModelRun artifact, writes the gradient report
there, and exports the serving model.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from components.trainer import data, distribute, export
from components.trainer.checkpoint import checkpoint_dir
from components.trainer.model import MLP
from components.trainer.options import CHECKPOINT_ROOT_KEY, NAME_KEY, UPSTREAM_KEYS, TrainingOptions
from components.trainer.report import GradientReport
from components.trainer.session import train


def train_model(
    fn_args: FnArgs, options: TrainingOptions, train_split: data.Split, eval_split: data.Split, name: str,
    distribution: tf.distribute.Strategy,
) -> tuple[MLP, GradientReport]:
    """``train`` with what the Trainer component adds: resumable checkpoints under the pipeline's
    checkpoint root (keyed by settings and inputs), upstream settings and the component's name."""
    checkpoints = None
    if options.trainer.checkpoint_every_n_steps and fn_args.custom_config.get(CHECKPOINT_ROOT_KEY):
        checkpoints = checkpoint_dir(
            fn_args.custom_config[CHECKPOINT_ROOT_KEY],
            {k: v for k, v in fn_args.custom_config.items() if k != CHECKPOINT_ROOT_KEY},
            [fn_args.transform_output, *fn_args.train_files, *fn_args.eval_files],
        )
    return train(
        train_split, eval_split, fn_args.model_run_dir, options, checkpoints,
        {key: fn_args.custom_config[key] for key in UPSTREAM_KEYS if key in fn_args.custom_config},
        name, distribution,
    )


def run_fn(fn_args: FnArgs) -> None:
    distribution = distribute.strategy_from_environment()  # first: before any other TensorFlow op
    options = TrainingOptions.from_custom_config(fn_args.custom_config)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    budget = options.trainer.memory_budget_mb * 2**20
    name = fn_args.custom_config.get(NAME_KEY, "Trainer")
    with data.open_split(fn_args.train_files, transform_output, budget) as train_split, \
            data.open_split(fn_args.eval_files, transform_output, budget) as eval_split:
        for split_name, split in (("training", train_split), ("eval", eval_split)):
            if isinstance(split, data.SpilledSplit):  # say why this run reads its disk
                print(f"{name}: the {split_name} split ({split.size:,} records) is over trainer.memory_budget_mb="
                      f"{options.trainer.memory_budget_mb} once transformed: streaming it from local disk in "
                      f"{len(split.paths)} buckets", flush=True)
        model, report = train_model(fn_args, options, train_split, eval_split, name, distribution)
    serving_model_dir = distribute.own_path(fn_args.serving_model_dir)
    export.export_serving_model(model, transform_output, serving_model_dir)  # every worker: saving may be collective
    if not distribute.is_chief():
        tf.io.gfile.rmtree(serving_model_dir)
        return
    path = report.write(fn_args.model_run_dir)
    print("Gradient report (" + path + "):\n  " + "\n  ".join(report.lines()), flush=True)
