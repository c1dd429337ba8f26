import numpy as np
import tensorflow as tf

from components.example_gen.records import serialize_examples
from tests.idx_files import synthetic


def test_records_parse_back_as_tf_examples():
    images, labels = synthetic(50)
    images[0] = 0  # all one-byte varints
    images[1] = 255  # all two-byte varints
    records = list(serialize_examples(images, labels))
    assert len(records) == 50
    for i in (0, 1, 2, 49):
        example = tf.train.Example.FromString(records[i])
        assert list(example.features.feature["image"].int64_list.value) == images[i].ravel().tolist()
        assert list(example.features.feature["label"].int64_list.value) == [labels[i]]
    parsed = tf.io.parse_example(
        records, {"image": tf.io.FixedLenFeature([784], tf.int64), "label": tf.io.FixedLenFeature([], tf.int64)}
    )
    np.testing.assert_array_equal(parsed["image"].numpy(), images.reshape(50, 784))
    np.testing.assert_array_equal(parsed["label"].numpy(), labels)


def test_records_match_the_proto_api_byte_for_byte():
    images, labels = synthetic(3)
    for record, image, label in zip(serialize_examples(images, labels), images, labels):
        expected = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "image": tf.train.Feature(int64_list=tf.train.Int64List(value=image.ravel().tolist())),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                }
            )
        )
        assert tf.train.Example.FromString(record) == expected
