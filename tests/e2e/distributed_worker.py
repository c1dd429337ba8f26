"""One process of the two-worker test (test_distributed.py): trains a small model for one epoch on a
slice of real MNIST with the Trainer's own ``train``, under the strategy ``TF_CONFIG`` asks for (none
when unset), and saves its final weights as ``<out>/<variant>/weights-<task>.npz``.

Usage: python -m tests.e2e.distributed_worker DATA_DIR OUT_DIR VARIANT[,VARIANT...]
Several variants train one after the other in the one process (under the one strategy): a process
start-up and a cluster's rendezvous cost more than one of these trainings. Each worker of a cluster
must be given the same list (their collective ops pair up in order); ``before`` must come last.
``after``: with the gradient noise scale on (telemetry.noise_scale): two workers estimate it from their
shares and the global batch, one process from the batch's halves, the same two batch sizes.
``before``: each worker clips its own share of the batch before the shares are summed, the mistake
the Trainer avoids; the test checks that it gives another model (so the test can fail). It replaces
a method of the loop for the rest of the process: hence last.
``resumable``: 30 epochs (240 steps), a checkpoint every 8 steps under ``OUT_DIR/checkpoints``.
``streamed``: 3 epochs, the training split spilled into 5 buckets (blocks of several lengths), as the
Trainer streams a split above its memory budget; each process spills its own copy.
``spike``: the spike guard on, global batch 6 scaled by 1e4; each process also writes its gradient report
as ``<out>/report-<task>.json`` (every worker takes the skip decision; only the chief keeps the report).
"""
from components.trainer import distribute

DISTRIBUTION = distribute.strategy_from_environment()  # first: before any TensorFlow op

import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.example_gen.readers import read_idx_split  # noqa: E402
from components.trainer.data import InMemorySplit  # noqa: E402
from components.trainer.loop import TrainingLoop  # noqa: E402
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions  # noqa: E402
from components.trainer.session import train  # noqa: E402
from tests.components.trainer.helpers import SpikedSplit, spilled  # noqa: E402

TRAIN, EVAL = 1024, 256  # 8 global batches of 128
CLIP = ClipOptions(strategy="global_norm", threshold=0.05)  # binds on every step of this run
OPTIONS = TrainerOptions(hidden_units=(32,), learning_rate=0.01, lr_schedule="constant", batch_size=128, epochs=1,
                         steps_per_call=4, checkpoint_every_n_steps=0, seed=1)


def split(data_dir: str, prefix: str, size: int):
    images, labels = read_idx_split(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"),
                                    os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return InMemorySplit(tf.constant(images[:size].reshape(size, -1).astype(np.float32) / 255.0),
                         tf.constant(labels[:size].astype(np.int64)))


def clip_each_share_then_sum(loop: TrainingLoop, x, y):
    loss, grads, *_ = loop._replica_gradients(x, y)  # noqa: SLF001  (the variant replaces this one step)
    grads, _ = tf.clip_by_global_norm(grads, CLIP.threshold)
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, [loss, *grads])


def run(data_dir: str, out_dir: str, variant: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    if variant == "before":
        TrainingLoop._all_reduced_gradients = clip_each_share_then_sum  # noqa: SLF001
    options, checkpoints, clip = OPTIONS, None, CLIP
    telemetry = TelemetryOptions(histogram_every_n_steps=0, noise_scale=variant == "after")
    train_split = split(data_dir, "train", TRAIN)
    if variant == "resumable":
        options = dataclasses.replace(OPTIONS, epochs=30, checkpoint_every_n_steps=8)
        checkpoints = os.path.join(out_dir, "checkpoints")
    if variant == "streamed":
        options = dataclasses.replace(OPTIONS, epochs=3)
        train_split = spilled(train_split, tempfile.mkdtemp(dir=out_dir, prefix="spill-"), buckets=5)
    if variant == "spike":  # half a window (2 steps) seen before the spike at step 6
        clip = dataclasses.replace(CLIP, skip_spikes=True, spike_window=4)
        train_split = SpikedSplit(train_split, seed=OPTIONS.seed, batch=6)
    model, report = train(train_split, split(data_dir, "t10k", EVAL), os.path.join(out_dir, "logs"),
                          TrainingOptions(options, clip, telemetry), checkpoints, distribution=DISTRIBUTION)
    kind, index = distribute.task()
    np.savez(os.path.join(out_dir, f"weights-{kind}-{index}.npz"), *[v.numpy() for v in model.variables_in_order])
    with open(os.path.join(out_dir, f"report-{kind}-{index}.json"), "w") as f:
        json.dump(dataclasses.asdict(report), f)


def main() -> None:
    data_dir, out_dir, variants = sys.argv[1:4]
    assert "before" not in variants.split(",")[:-1], "before replaces a method for the rest of the process: list it last"
    for variant in variants.split(","):
        run(data_dir, os.path.join(out_dir, variant), variant)


if __name__ == "__main__":
    main()
