"""The Trainer's split loading: the real transform graph applied, records in a canonical order."""
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata

from components.example_gen.records import serialize_examples
from components.trainer.data import load_split
from components.transform.preprocessing import preprocessing_fn
from pipeline.pipeline import SCHEMA_FILE
from tests.idx_files import synthetic


def _transform_output(folder: str) -> tft.TFTransformOutput:
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


def _write(path: str, records) -> None:
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for record in records:
            writer.write(record)


def test_same_records_in_any_order_and_sharding_load_identically(tmp_path):
    transform_output = _transform_output(str(tmp_path / "transform"))
    images, labels = synthetic(50, seed=3)
    flat = images.reshape(50, -1)
    records = list(serialize_examples(flat, labels))
    shuffled = [records[i] for i in np.random.default_rng(0).permutation(50)]
    _write(str(tmp_path / "a.gz"), records)
    _write(str(tmp_path / "b-0.gz"), shuffled[:20])
    _write(str(tmp_path / "b-1.gz"), shuffled[20:])

    x_a, y_a = load_split([str(tmp_path / "a.gz")], transform_output)
    x_b, y_b = load_split([str(tmp_path / "b-*.gz")], transform_output)

    np.testing.assert_array_equal(x_a.numpy(), x_b.numpy())
    np.testing.assert_array_equal(y_a.numpy(), y_b.numpy())
    # The same (image / 255, label) pairs as written, only reordered.
    pixels = (x_a.numpy() * 255).round().astype(np.int64)
    assert sorted(zip(map(tuple, pixels), y_a.numpy())) == sorted(zip(map(tuple, flat.astype(np.int64)), labels))
