"""Read TensorBoard event files back (TensorBoard's own reader), as numbers."""
from __future__ import annotations

import os
from typing import Dict

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata

from components.trainer import tags

NUMBERS = (scalar_metadata.PLUGIN_NAME, histogram_metadata.PLUGIN_NAME)
Series = Dict[int, np.ndarray]  # step -> value (a scalar, or a [k, 3] histogram)


def read_run(logdir: str, run: str = tags.TRAIN_RUN) -> Dict[str, Series]:
    """tag -> {step: value} for every scalar and histogram in ``logdir/run`` (not the
    dashboards' layout and HParams records)."""
    accumulator = event_accumulator.EventAccumulator(os.path.join(logdir, run), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {
        tag: {event.step: tf.make_ndarray(event.tensor_proto) for event in accumulator.Tensors(tag)}
        for tag in accumulator.Tags()["tensors"]
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name in NUMBERS
    }


def scalar_curve(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a scalar series, in step order."""
    steps = np.array(sorted(series), dtype=np.int64)
    return steps, np.array([float(series[s]) for s in steps])
