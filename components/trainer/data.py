"""Training data: a split in memory below a memory budget, else spilled to disk and streamed in blocks.

A split whose transformed records fit the budget (``trainer.memory_budget_mb``;
MNIST's 60,000 training images take 188 MB) is parsed and transformed once, by
the same transform graph the serving signature uses, and sampled by index
every epoch. A larger split is transformed once into hash buckets on local
disk, each about a quarter of the budget, and every epoch streams them: the
buckets in a seeded order, the records of each in a seeded order, the next
bucket read while the current one trains. Memory then holds a few buckets,
whatever the size of the split.

Either way the order depends on the records and the seed, not on the order
ExampleGen wrote them in (Beam's shuffle picks a new one every run): records
are keyed by a fingerprint of their bytes, and the same records, seed and
budget give the same batches, so the same model. The two modes shuffle
differently (one permutation of the whole split vs. a permutation of buckets
and of each bucket's records), so they train different models of the same
quality.

Transformation is eager, batch by batch, in both modes: inside ``Dataset.map``
the Transform layer is traced into the dataset's graph, ten times slower than
this loop for the 60,000 training images (docs/benchmarks.md).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
from typing import Iterator, List, Optional, Protocol, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.common.errors import ClipflowError
from components.example_gen.records import LABEL_KEY
from components.transform.preprocessing import IMAGE_XF_KEY

READ_BATCH = 4096
FINGERPRINTS = 2**63 - 1  # hash range of the canonical order
BUCKETS_PER_BUDGET = 4  # a bucket, the next one read ahead and their copies fit the budget

class SpillFailed(ClipflowError):
    """The local disk could not take a split to stream."""


Block = Tuple[tf.Tensor, tf.Tensor]  # (image_xf float32[n, width], label int64[n])


class Split(Protocol):
    """What the training loop reads: a split's size, its blocks in an epoch's order, and all of it once."""

    size: int

    def epoch(self, seed: int, batch_size: int) -> Iterator[Block]:
        """The split in the order of the epoch seeded by ``seed``, in blocks of whole batches (the last may be short)."""

    def blocks(self) -> Iterator[Block]:
        """Every record once, in no particular order (evaluation)."""


def _permutation(size: int, seed: int, stream: int) -> np.ndarray:
    return tf.argsort(tf.random.stateless_uniform([size], seed=[seed, stream])).numpy()


@dataclasses.dataclass(frozen=True)
class InMemorySplit:
    images: tf.Tensor
    labels: tf.Tensor

    @property
    def size(self) -> int:
        return int(self.images.shape[0])

    def epoch(self, seed: int, batch_size: int) -> Iterator[Block]:
        # One contiguous shuffled copy per epoch: batches are then slices, not
        # per-step gathers of 128 random rows from the whole array.
        order = _permutation(self.size, seed, 0)
        yield tf.gather(self.images, order), tf.gather(self.labels, order)

    def blocks(self) -> Iterator[Block]:
        yield self.images, self.labels


def _row_type(width: int) -> np.dtype:
    """A record on disk: its fingerprint (the canonical order within a bucket), label and transformed image."""
    return np.dtype([("fingerprint", "<i8"), ("label", "<i8"), ("image", "<f4", (width,))])


def _block(rows: np.ndarray) -> Block:
    return tf.constant(rows["image"]), tf.constant(rows["label"])


@dataclasses.dataclass(frozen=True)
class SpilledSplit:
    """A split in bucket files ``<directory>/bucket-<b>``: bucket ``b`` holds the records whose
    fingerprint falls in the ``b``-th of ``len(paths)`` equal ranges, so each is a uniform sample."""

    paths: Tuple[str, ...]
    size: int
    width: int

    def _read(self, index: int, seed: Optional[int] = None) -> np.ndarray:
        """Bucket ``index``; with ``seed``, in that epoch's order: a seeded permutation of the
        fingerprint order (canonical: the same whatever order the files held the records in)."""
        rows = np.fromfile(self.paths[index], dtype=_row_type(self.width))
        if seed is None:
            return rows
        order = np.argsort(rows["fingerprint"], kind="stable")
        return rows[order[_permutation(len(rows), seed, 1 + index)]]

    def epoch(self, seed: int, batch_size: int) -> Iterator[Block]:
        order = _permutation(len(self.paths), seed, 0)
        carried = np.zeros(0, _row_type(self.width))  # the rows after the last whole batch, carried into the next block
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as reader:
            upcoming = reader.submit(self._read, order[0], seed)
            for position in range(len(order)):
                rows = upcoming.result()
                last = position + 1 == len(order)
                if not last:  # read the next bucket while this one trains
                    upcoming = reader.submit(self._read, order[position + 1], seed)
                rows = np.concatenate([carried, rows]) if len(carried) else rows
                whole = len(rows) if last else len(rows) // batch_size * batch_size
                carried = rows[whole:].copy()
                block = _block(rows[:whole])
                del rows  # only the block's tensors stay while it trains
                if whole:
                    yield block

    def blocks(self) -> Iterator[Block]:
        for index in range(len(self.paths)):
            yield _block(self._read(index))


class BucketWriter:
    """Appends rows to the bucket files of a ``SpilledSplit``."""

    def __init__(self, directory: str, buckets: int):
        self.paths = tuple(os.path.join(directory, f"bucket-{b:05d}") for b in range(buckets))
        self.span = -(-FINGERPRINTS // buckets)  # fingerprints per bucket
        self.size = self.width = 0
        for path in self.paths:
            open(path, "wb").close()  # an empty bucket is a bucket too

    def write(self, fingerprints: np.ndarray, labels: np.ndarray, images: np.ndarray) -> None:
        self.width = images.shape[1]
        rows = np.empty(len(labels), _row_type(self.width))
        rows["fingerprint"], rows["label"], rows["image"] = fingerprints, labels, images
        bucket_of = fingerprints // self.span
        for bucket in np.unique(bucket_of):
            with open(self.paths[bucket], "ab") as f:
                rows[bucket_of == bucket].tofile(f)
        self.size += len(rows)

    def split(self) -> SpilledSplit:
        return SpilledSplit(self.paths, self.size, self.width)


def _records(files: List[str], batch: int = READ_BATCH) -> tf.data.Dataset:
    """Serialized records in batches, each file read as its name says: gzipped if ``.gz`` (TFX's
    own ExampleGen), else plain (ours)."""
    datasets = [tf.data.TFRecordDataset(f, compression_type="GZIP" if f.endswith(".gz") else "") for f in files]
    return functools.reduce(tf.data.Dataset.concatenate, datasets).batch(batch)


def _fingerprints(records: tf.Tensor) -> tf.Tensor:
    return tf.strings.to_hash_bucket_fast(records, FINGERPRINTS)


def _count(files: List[str]) -> int:
    """Records in the files: one streaming pass, so the split is never held to be counted."""
    return int(_records(files).reduce(tf.constant(0, tf.int64), lambda n, batch: n + tf.size(batch, tf.int64)))


def _transformed(records: tf.Tensor, transform_output: tft.TFTransformOutput) -> Block:
    """A batch of serialized examples through the Transform graph."""
    batch = transform_output.transform_features_layer()(tf.io.parse_example(records, transform_output.raw_feature_spec()))
    return batch[IMAGE_XF_KEY], tf.reshape(batch[LABEL_KEY], [-1])


def _records_up_to(files: List[str], limit: int) -> Optional[tf.Tensor]:
    """The files' records in one pass if there are at most ``limit``; None as soon as there are more
    (serialized, they take about a third of the memory they take transformed)."""
    batches, count = [], 0
    for batch in _records(files):
        count += int(batch.shape[0])
        if count > limit:
            return None
        batches.append(batch)
    return tf.concat(batches, axis=0)


def _in_memory(records: tf.Tensor, transform_output: tft.TFTransformOutput) -> InMemorySplit:
    """Sorted by fingerprint (identical records are interchangeable; a collision between different
    ones, about 1 in 10^10 for 60,000 records, keeps the files' order), then transformed batch by batch."""
    records = tf.gather(records, tf.argsort(_fingerprints(records), stable=True))
    batches = [_transformed(records[start : start + READ_BATCH], transform_output)
               for start in range(0, int(records.shape[0]), READ_BATCH)]
    return InMemorySplit(tf.concat([b[0] for b in batches], axis=0), tf.concat([b[1] for b in batches], axis=0))


def _spilled(
    files: List[str], transform_output: tft.TFTransformOutput, buckets: int, directory: str, batch: int,
) -> SpilledSplit:
    writer = BucketWriter(directory, buckets)
    for records in _records(files, batch):
        images, labels = _transformed(records, transform_output)
        writer.write(_fingerprints(records).numpy(), labels.numpy(), images.numpy())
    return writer.split()


def row_bytes(transform_output: tft.TFTransformOutput) -> int:
    """Bytes of one transformed record held in memory: its image and its label."""
    shape = transform_output.transformed_feature_spec()[IMAGE_XF_KEY].shape
    return int(np.prod(shape)) * 4 + 8


@contextlib.contextmanager
def open_split(file_patterns: List[str], transform_output: tft.TFTransformOutput, memory_budget_bytes: int):
    """The split's records, transformed: in memory if they fit ``memory_budget_bytes``, else spilled
    to a temporary folder (removed on exit) in buckets of about a quarter of the budget."""
    files = [f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)]
    row = row_bytes(transform_output)
    records = _records_up_to(files, memory_budget_bytes // row)
    if records is not None:  # read once: the common case needs no pass to count them first
        yield _in_memory(records, transform_output)
        return
    size = _count(files) * row
    directory = None
    try:
        try:
            directory = tempfile.mkdtemp(prefix="clipflow-spill-")
            # Batches no larger than a bucket: the allocator keeps several freed batches resident, so
            # the batch is part of what the budget bounds (docs/benchmarks.md, "Scaling with the data").
            batch = max(1, min(READ_BATCH, memory_budget_bytes // BUCKETS_PER_BUDGET // row))
            buckets = -(-size * BUCKETS_PER_BUDGET // memory_budget_bytes)
            split = _spilled(files, transform_output, buckets, directory, batch)
        except OSError as err:
            raise SpillFailed(
                f"cannot stream a split of {size / 2**20:.1f} MB from {directory or tempfile.gettempdir()} "
                f"({err.strerror or err}); free space there, point TMPDIR at a larger local disk, "
                f"or raise trainer.memory_budget_mb to hold the split in memory"
            ) from None
        yield split
    finally:
        if directory:
            shutil.rmtree(directory, ignore_errors=True)
