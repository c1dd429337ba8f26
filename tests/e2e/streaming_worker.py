"""One Trainer run of test_streaming.py, in a process of its own so its peak RSS is its own: the
training split opened under a memory budget, one epoch of the default model, then one JSON line.

Usage: python -m tests.e2e.streaming_worker TRANSFORM_DIR TRAIN_FILE EVAL_FILE BUDGET_BYTES LOGDIR
"""
import json
import sys

import components  # noqa: F401  (Keras choice before TensorFlow loads)
import tensorflow_transform as tft

from components.trainer import data
from components.trainer.options import TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import train


def peak_rss_mib() -> float:
    """This process's peak RSS since its exec: VmHWM (getrusage's ru_maxrss carries over the parent's
    peak across fork and exec, here the test runner's)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024  # kB


def main() -> None:
    transform_dir, train_file, eval_file, budget, epochs, logdir = sys.argv[1:7]
    transform_output = tft.TFTransformOutput(transform_dir)
    with data.open_split([train_file], transform_output, int(budget)) as train_split, \
            data.open_split([eval_file], transform_output, 2**30) as eval_split:
        _, report = train(train_split, eval_split, logdir, TrainingOptions(
            TrainerOptions(epochs=int(epochs)), telemetry=TelemetryOptions(histogram_every_n_steps=0)))
        mode = type(train_split).__name__
    print(json.dumps({"mode": mode, "records": train_split.size, "peak_rss_mib": peak_rss_mib(),
                      "accuracy": report.eval_accuracy}))


if __name__ == "__main__":
    main()
