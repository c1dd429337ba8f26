"""Training data in memory, transformed once by the Transform graph.

MNIST fits in memory many times over (60k x 784 float32 = 188 MB), so each
split is parsed and transformed once, by the same transform graph the
serving signature uses, and then sampled by index every epoch. Transform
therefore does not materialize transformed examples.
"""
from __future__ import annotations

from typing import List, Tuple

import tensorflow as tf
import tensorflow_transform as tft

from components.example_gen.records import LABEL_KEY
from components.transform.preprocessing import IMAGE_XF_KEY

READ_BATCH = 4096
FINGERPRINTS = 2**63 - 1  # hash range of the canonical order


def load_split(file_patterns: List[str], transform_output: tft.TFTransformOutput) -> Tuple[tf.Tensor, tf.Tensor]:
    """All records of a split as ``(image_xf float32[N, 784], label int64[N])``, in a canonical order.

    ExampleGen's records come in an order Beam's shuffle picks anew on every
    run; sorted by a fingerprint of their bytes, the same data gives the same
    batches for a seed, so the same inputs train the same model (identical
    records are interchangeable; a fingerprint collision between different
    ones, about 1 in 10^10 for 60,000 records, would keep the files' order).

    Parsed and transformed eagerly, batch by batch: inside ``Dataset.map`` the
    Transform layer is traced into the dataset's graph, ten times slower than
    this loop for the 60,000 training images (docs/benchmarks.md)."""
    files = [f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)]
    records = tf.concat(list(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(READ_BATCH)), axis=0)
    records = tf.gather(records, tf.argsort(tf.strings.to_hash_bucket_fast(records, FINGERPRINTS), stable=True))
    raw_spec = transform_output.raw_feature_spec()
    tft_layer = transform_output.transform_features_layer()
    images, labels = [], []
    for start in range(0, int(records.shape[0]), READ_BATCH):
        batch = tft_layer(tf.io.parse_example(records[start : start + READ_BATCH], raw_spec))
        images.append(batch[IMAGE_XF_KEY])
        labels.append(tf.reshape(batch[LABEL_KEY], [-1]))
    return tf.concat(images, axis=0), tf.concat(labels, axis=0)
