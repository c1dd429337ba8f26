"""Export: a SavedModel whose serving signature takes raw tf.Examples.

The Transform graph is attached, so serving and TFMA apply exactly the
scaling the model was trained with. ``tf.saved_model.save`` is used because
Keras 3's ``model.save(save_format='tf')`` no longer exists.

The transform graph is applied by TFT's SavedModelLoader, the object inside
TFT's Keras ``TransformFeaturesLayer``, without that layer: saving a Keras
layer makes ``tf.saved_model.save`` trace Keras' call functions, nearly all
of the export's time (docs/benchmarks.md).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform.saved.saved_transform_io_v2 import SavedModelLoader

from components.example_gen.records import LABEL_KEY
from components.trainer.model import MLP
from components.transform.preprocessing import IMAGE_XF_KEY

SIGNATURE = "serving_default"
OUTPUT_KEY = "probabilities"


class ServingModule(tf.Module):
    def __init__(self, model: MLP, transform_output: tft.TFTransformOutput):
        super().__init__()
        self.model = model
        self._transform = SavedModelLoader(transform_output.transform_savedmodel_dir)
        # Tracked so the transform graph's resources are saved too (as TFT's own layer does it).
        self._transform_tracked = self._transform.__dict__
        feature_spec = transform_output.raw_feature_spec()
        feature_spec.pop(LABEL_KEY)  # serving requests carry no label
        self._serve = tf.function(
            lambda examples: self._probabilities(tf.io.parse_example(examples, feature_spec)),
            input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
            # No Python control flow here; autograph would convert TFT's
            # code as well, seconds of tracing for nothing (docs/benchmarks.md).
            autograph=False,
        )

    def _probabilities(self, features):
        logits = self.model(self._transform.apply_transform_model(features)[IMAGE_XF_KEY])
        return {OUTPUT_KEY: tf.nn.softmax(logits)}


def export_serving_model(model: MLP, transform_output: tft.TFTransformOutput, export_dir: str) -> None:
    module = ServingModule(model, transform_output)
    tf.saved_model.save(module, export_dir, signatures={SIGNATURE: module._serve})  # noqa: SLF001 (its own tf.function)
