"""Read TensorBoard event files back (TensorBoard's own reader), as numbers."""
from __future__ import annotations

import os
from typing import Dict

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

Series = Dict[int, np.ndarray]  # step -> value (a scalar, or a [k, 3] histogram)


def read_run(logdir: str, run: str = "train") -> Dict[str, Series]:
    """tag -> {step: value} for every tensor summary in ``logdir/run``."""
    accumulator = event_accumulator.EventAccumulator(os.path.join(logdir, run), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {
        tag: {event.step: tf.make_ndarray(event.tensor_proto) for event in accumulator.Tensors(tag)}
        for tag in accumulator.Tags()["tensors"]
    }


def scalar_curve(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a scalar series, in step order."""
    steps = np.array(sorted(series), dtype=np.int64)
    return steps, np.array([float(series[s]) for s in steps])
