"""Examples that break schemas/mnist/schema.pbtxt stop the run with every anomaly named."""
import os

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.types import standard_artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

from components.common.errors import DataError
from components.validation.gate import ANOMALIES_FILE, check_anomalies
from pipeline.pipeline import SCHEMA_FILE

pytestmark = pytest.mark.slow  # TFDV over real examples


def _example(pixels, label) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": tf.train.Feature(int64_list=tf.train.Int64List(value=pixels)),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
        )
    )


def _anomalies_artifact(tmp_path, examples) -> ExampleAnomalies:
    """What ExampleValidator writes: TFDV's anomalies per split under the artifact's uri."""
    records = str(tmp_path / "records.tfrecord")
    with tf.io.TFRecordWriter(records) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    stats = tfdv.generate_statistics_from_tfrecord(records, output_path=str(tmp_path / "stats"))
    anomalies = tfdv.validate_statistics(stats, tfdv.load_schema_text(SCHEMA_FILE))
    artifact = ExampleAnomalies()
    artifact.uri = str(tmp_path / "anomalies")
    artifact.split_names = standard_artifact_utils.encode_split_names(["train"])
    split_dir = os.path.join(artifact.uri, "Split-train")
    os.makedirs(split_dir)
    with open(os.path.join(split_dir, ANOMALIES_FILE), "wb") as f:
        f.write(anomalies.SerializeToString())
    return artifact


def test_valid_examples_pass(tmp_path):
    check_anomalies(_anomalies_artifact(tmp_path, [_example([0] * 784, 3), _example([255] * 784, 9)]))


def test_label_and_pixel_violations_are_named(tmp_path):
    artifact = _anomalies_artifact(tmp_path, [_example([0] * 784, 12), _example([300] * 784, 1)])
    with pytest.raises(DataError) as err:
        check_anomalies(artifact)
    message = str(err.value)
    assert message.startswith("the examples do not match schemas/mnist/schema.pbtxt")
    assert "train: feature 'label'" in message and "train: feature 'image'" in message
    assert "\n" not in message


def test_wrong_shape_is_named(tmp_path):
    artifact = _anomalies_artifact(tmp_path, [_example([0] * 700, 1)])
    with pytest.raises(DataError, match="feature 'image'"):
        check_anomalies(artifact)
