"""The scaling modes, run through real tf.Transform on Beam, against hand-computed numbers."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components.common.errors import ConfigError
from components.transform.options import ScalingOptions
from components.transform.preprocessing import IMAGE_XF_KEY, preprocessing_fn

# Two images: one all 10, one all 30, except pixel 0 which is 0 and 255.
IMAGES = np.array([[0] + [10] * 783, [255] + [30] * 783], dtype=np.int64)
LABELS = [3, 7]


def _transform(scaling: dict, temp_dir: str) -> np.ndarray:
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(
            {"image": tf.io.FixedLenFeature([784], tf.int64), "label": tf.io.FixedLenFeature([], tf.int64)}
        )
    )
    rows = [{"image": image, "label": label} for image, label in zip(IMAGES, LABELS)]
    with tft_beam.Context(temp_dir=temp_dir, force_tf_compat_v1=False), tf.device("/cpu:0"):
        (transformed, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, {"scaling": scaling})
        )
    assert [row["label"] for row in transformed] == LABELS
    return np.stack([row[IMAGE_XF_KEY] for row in transformed])


@pytest.mark.slow  # tf.Transform's analyzers on Beam
def test_divide(tmp_path):
    out = _transform({"mode": "divide", "divisor": 50.0}, str(tmp_path))
    np.testing.assert_allclose(out[0, :2], [0.0, 0.2], rtol=1e-6)
    np.testing.assert_allclose(out[1, :2], [5.1, 0.6], rtol=1e-6)


@pytest.mark.slow  # tf.Transform's analyzers on Beam
def test_min_max_uses_the_global_min_and_max(tmp_path):
    out = _transform({"mode": "min_max"}, str(tmp_path))
    # min 0, max 255 over all pixels of both images.
    np.testing.assert_allclose(out[0, :2], [0.0, 10 / 255], rtol=1e-5)
    np.testing.assert_allclose(out[1, :2], [1.0, 30 / 255], rtol=1e-5)


@pytest.mark.slow  # tf.Transform's analyzers on Beam
def test_z_score_uses_the_global_mean_and_std(tmp_path):
    out = _transform({"mode": "z_score"}, str(tmp_path))
    pixels = IMAGES.astype(np.float64).ravel()
    mean, std = pixels.mean(), pixels.std()  # by hand: (0+255+783*40)/1568, population std
    assert mean == pytest.approx((255 + 783 * 40) / 1568)
    np.testing.assert_allclose(out[1, :2], [(255 - mean) / std, (30 - mean) / std], rtol=1e-4)
    assert out.mean() == pytest.approx(0.0, abs=1e-4)


def test_divisor_zero_is_rejected():
    with pytest.raises(ConfigError, match="transform.divisor must not be 0"):
        ScalingOptions(mode="divide", divisor=0.0)
