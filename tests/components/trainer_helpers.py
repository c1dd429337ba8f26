"""Tiny synthetic training runs and an event-file reader for trainer tests."""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

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
                 TelemetryOptions(histogram_every_n_steps=every)), options


def read_run(logdir: str, run: str = "train") -> dict:
    """tag -> {step: value}; scalars as floats, histograms as [k, 3] arrays."""
    accumulator = event_accumulator.EventAccumulator(os.path.join(logdir, run), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {
        tag: {event.step: tf.make_ndarray(event.tensor_proto) for event in accumulator.Tensors(tag)}
        for tag in accumulator.Tags()["tensors"]
    }
