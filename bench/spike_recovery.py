"""A batch scaled by 1e4 mid-training, on full MNIST: what stops a run today, and what the spike guard
and a rollback make of it, over several seeds.

SGD at 0.1 with cross-entropy and no clipping (Adam bounds its own update and survives such a batch;
SGD does not), 3 epochs, the spike at batch 100 of the second epoch (step 569); rollback with its
defaults (100 steps back, 200 batches skipped) and a checkpoint every 100 steps. Each variant's eval
accuracy, whether training diverged, the steps skipped, the rollbacks, and whether the pipeline would
bless the model: accuracy at least evaluator.accuracy_threshold (0.95) and not diverged (the health bar).
The spike is injected by the tests' ``SpikedSplit`` (the Trainer has no hook for it).

Usage: python -m bench.spike_recovery [--seeds 0,1,2,3]
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile

import tensorflow as tf

from bench.common import load_train
from components.trainer.data import InMemorySplit
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import train
from tests.components.trainer.helpers import SpikedSplit

BAR = 0.95  # evaluator.accuracy_threshold's default
OPTIONS = TrainerOptions(optimizer="sgd", learning_rate=0.1, lr_schedule="constant", epochs=3)
ROLLBACK = dataclasses.replace(OPTIONS, on_divergence="rollback", checkpoint_every_n_steps=100)  # every <= steps back
VARIANTS = {
    "today (stop)": (OPTIONS, ClipOptions(strategy="none")),
    "spike guard": (OPTIONS, ClipOptions(strategy="none", skip_spikes=True)),
    "rollback": (ROLLBACK, ClipOptions(strategy="none")),
    "spike guard and rollback": (ROLLBACK, ClipOptions(strategy="none", skip_spikes=True)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3")
    args = parser.parse_args()
    train_split, eval_split = (InMemorySplit(*map(tf.constant, load_train(prefix=p))) for p in ("train", "t10k"))
    print("| variant | seed | eval accuracy | diverged at | spike steps skipped | rollbacks | blessed |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name, (options, clip) in VARIANTS.items():
        for seed in map(int, args.seeds.split(",")):
            spiked = SpikedSplit(train_split, seed=seed + 1, batch=100)  # epoch 1's seed is trainer.seed + 1
            _, report = train(spiked, eval_split, tempfile.mkdtemp(), TrainingOptions(
                dataclasses.replace(options, seed=seed), clip, TelemetryOptions(histogram_every_n_steps=0)))
            blessed = report.eval_accuracy >= BAR and report.diverged_at_step is None
            rollbacks = "; ".join(f"{r['at_step']} -> {r['to_step']}" for r in report.rollbacks) or "-"
            print(f"| {name} | {seed} | {report.eval_accuracy:.4f} | {report.diverged_at_step or '-'} | "
                  f"{report.skipped_spikes} | {rollbacks} | {'yes' if blessed else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
