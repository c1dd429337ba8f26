"""Tiny synthetic training runs for trainer tests."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions
from components.trainer.run_fn import train

SIZE = 64


def synthetic_split(seed: int = 0, size: int = SIZE):
    rng = np.random.default_rng(seed)
    images = rng.random((size, 784), dtype=np.float32)
    labels = rng.integers(0, 10, size)
    return tf.constant(images), tf.constant(labels, tf.int64)


def tiny_run(logdir: str, train_split=None, epochs: int = 12, batch_size: int = SIZE, clip: ClipOptions = ClipOptions(),
             every: int = 5, loss: str = "mse"):
    options = TrainerOptions(hidden_units=(16,), optimizer="sgd", learning_rate=0.1, loss=loss, epochs=epochs,
                             batch_size=batch_size, steps_per_call=4, seed=3)
    return train(train_split or synthetic_split(), synthetic_split(1), logdir, options, clip,
                 TelemetryOptions(histogram_every_n_steps=every, clip_rate_window=5)), options
