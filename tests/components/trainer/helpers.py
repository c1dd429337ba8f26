"""Tiny synthetic training runs for trainer tests, and the Trainer's inputs written as the pipeline writes them."""
from __future__ import annotations

import dataclasses
import hashlib
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata

from components.trainer.data import FINGERPRINTS, BucketWriter, InMemorySplit, SpilledSplit
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import train
from components.transform.preprocessing import preprocessing_fn
from pipeline.pipeline import SCHEMA_FILE

SIZE = 64


def synthetic_split(seed: int = 0, size: int = SIZE):
    rng = np.random.default_rng(seed)
    images = rng.random((size, 784), dtype=np.float32)
    labels = rng.integers(0, 10, size)
    return InMemorySplit(tf.constant(images), tf.constant(labels, tf.int64))


def spilled(split: InMemorySplit, directory: str, buckets: int) -> SpilledSplit:
    """The split in bucket files, as the Trainer spills a split above its memory budget (fingerprints
    of each image's bytes stand in for those of its serialized record)."""
    images, labels = split.images.numpy(), split.labels.numpy()
    fingerprints = np.array([int.from_bytes(hashlib.sha256(row.tobytes()).digest()[:8], "little") % FINGERPRINTS
                             for row in images])
    os.makedirs(directory, exist_ok=True)
    writer = BucketWriter(directory, buckets)
    writer.write(fingerprints, labels, images)
    return writer.split()


def tiny_run(logdir: str, train_split=None, epochs: int = 12, batch_size: int = SIZE, clip: ClipOptions = ClipOptions(),
             every: int = 5, loss: str = "mse", update_every: int = 1):
    """A 12-step run of a tiny model, with every step's update norm measured unless ``update_every`` says otherwise."""
    options = TrainerOptions(hidden_units=(16,), optimizer="sgd", learning_rate=0.1, loss=loss, epochs=epochs,
                             batch_size=batch_size, steps_per_call=4, seed=3)
    telemetry = TelemetryOptions(histogram_every_n_steps=every, clip_rate_window=5, update_every_n_steps=update_every)
    return train(train_split or synthetic_split(), synthetic_split(1), logdir, TrainingOptions(options, clip, telemetry)), options


def transform_output(folder: str) -> tft.TFTransformOutput:
    """A transform graph and raw metadata (the curated schema) written by tf.Transform on Beam,
    as the Transform component does."""
    with open(SCHEMA_FILE) as f:
        metadata = dataset_metadata.DatasetMetadata(text_format.Parse(f.read(), schema_pb2.Schema()))
    rows = [{"image": np.zeros(784, np.int64), "label": 0}]
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=folder + "-tmp", force_tf_compat_v1=False):
        transform_fn = (pipeline | beam.Create(rows), metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing_fn(inputs, {"scaling": {"mode": "divide", "divisor": 255.0}})
        )
        _ = transform_fn | tft_beam.WriteTransformFn(folder)
        _ = metadata | tft_beam.WriteMetadata(
            os.path.join(folder, tft.TFTransformOutput.RAW_METADATA_DIR), pipeline=pipeline
        )
    return tft.TFTransformOutput(folder)


def write_records(path: str, records) -> None:
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for record in records:
            writer.write(record)


@dataclasses.dataclass(frozen=True)
class SpikedSplit:
    """A split whose batch ``batch`` in the epoch seeded ``seed`` is scaled by ``factor``: a bad batch at
    a chosen data position, the injected spike of the spike-guard and rollback tests (and their bench).
    Only tests use it; the Trainer has no hook for it. ``inner``: a split of one block per epoch."""

    inner: InMemorySplit
    seed: int  # the epoch's seed: trainer.seed + epoch
    batch: int
    factor: float = 1e4

    @property
    def size(self) -> int:
        return self.inner.size

    def epoch(self, seed: int, batch_size: int):
        for images, labels in self.inner.epoch(seed, batch_size):
            if seed == self.seed:
                rows = tf.range(tf.shape(images)[0]) // batch_size == self.batch
                images = tf.where(rows[:, None], images * self.factor, images)
            yield images, labels

    def blocks(self):
        return self.inner.blocks()
