"""Which global-norm threshold should the default run clip at? Accuracy and clip rate over thresholds and seeds.

Trains the default model (every Trainer default but the threshold) on the
splits a finished pipeline run produced (its examples, through its transform
graph: what the Trainer itself reads), once per (threshold, seed), in one
process. Prints per run: eval accuracy (the Trainer's own evaluation, equal to
TFMA's), fraction of steps clipped (overall and per epoch), first and last clipped step, max pre-clip
norm; then per threshold the worst accuracy over the seeds.

Usage: python -m bench.clip_threshold --output-dir runs [--thresholds none 0.5 1] [--seeds 0 1 2 3 4 5 6 7]
(run ``make run`` first: it needs a pipeline run on full MNIST in --output-dir)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time

import numpy as np
import tensorflow_transform as tft

import components  # noqa: F401  (Keras choice before TensorFlow loads)
from components.trainer import data
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import train
from pipeline import metadata
from pipeline.tools.events import read_run, scalar_curve
from pipeline.paths import RunPaths


def transformed_splits(output_dir: str, stack: contextlib.ExitStack):
    """The latest pipeline run's train and eval splits, through its Transform graph, open until ``stack`` closes."""
    store = metadata.open_store(RunPaths(output_dir, output_dir).metadata_db)
    by_node = {e.node: e for e in metadata.run_executions(store, metadata.latest_run_id(store))}
    examples = by_node["MnistExampleGen"].outputs["examples"][0].uri
    transform_output = tft.TFTransformOutput(by_node["Transform"].outputs["transform_graph"][0].uri)
    budget = TrainerOptions().memory_budget_mb * 2**20
    return [stack.enter_context(data.open_split([os.path.join(examples, f"Split-{split}", "*")], transform_output, budget))
            for split in ("train", "eval")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs", help="a pipeline run's output dir (full MNIST)")
    parser.add_argument("--thresholds", nargs="+", default=["none", "0.5", "1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(8)))
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        sweep_thresholds(args, *transformed_splits(args.output_dir, stack))


def sweep_thresholds(args: argparse.Namespace, train_split: data.Split, eval_split: data.Split) -> None:
    print(f"train {train_split.size} / eval {eval_split.size} examples")
    print("| threshold | seed | eval accuracy | clipped | clipped per epoch | first clipped | last clipped "
          "| max pre-clip | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = {}
    for threshold in args.thresholds:
        clip = ClipOptions(strategy="none") if threshold == "none" else ClipOptions(threshold=float(threshold))
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as logdir:
                start = time.perf_counter()
                options = TrainerOptions(seed=seed)
                _, report = train(train_split, eval_split, logdir, TrainingOptions(
                    options, clip, TelemetryOptions(histogram_every_n_steps=0)))
                seconds = time.perf_counter() - start
                steps, clipped = scalar_curve(read_run(logdir)["clip/clipped"])
            last = int(steps[clipped > 0].max()) if clipped.any() else None
            per_epoch = " / ".join(f"{part.mean():.0%}" for part in np.array_split(clipped, options.epochs))
            print(f"| {threshold} | {seed} | {report.eval_accuracy:.4f} | {report.clipped_fraction:.2%} | "
                  f"{per_epoch} | {report.first_clipped_step} | {last} | {report.max_pre_clip_norm:.3f} | {seconds:.1f} |",
                  flush=True)
            worst[threshold] = min(worst.get(threshold, 1.0), report.eval_accuracy)
    print("\nworst eval accuracy over seeds " + ", ".join(map(str, args.seeds)) + ":")
    for threshold, accuracy in worst.items():
        print(f"  threshold {threshold}: {accuracy:.4f}")


if __name__ == "__main__":
    main()
