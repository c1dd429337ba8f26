"""preprocessing_fn for TFX Transform, referenced by import path.

The scaling mode arrives in ``custom_config`` (JSON), the same on every
orchestrator. Analyzers run over *all* pixels of the training split
(``elementwise=False``): per-pixel statistics would divide by zero on the
always-black border pixels.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from components.common.typed import from_dict
from components.example_gen.records import IMAGE_KEY, LABEL_KEY
from components.transform.options import ScalingOptions

IMAGE_XF_KEY = "image_xf"

_SCALERS: Dict[str, Callable[[tf.Tensor, ScalingOptions], tf.Tensor]] = {
    "divide": lambda pixels, options: pixels / options.divisor,
    "min_max": lambda pixels, options: tft.scale_to_0_1(pixels, elementwise=False),
    "z_score": lambda pixels, options: tft.scale_to_z_score(pixels, elementwise=False),
}


def preprocessing_fn(inputs: Mapping[str, tf.Tensor], custom_config: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
    """Raw ``image`` (int64[784]) -> scaled ``image_xf`` (float32[784]); label passes through."""
    options = from_dict(ScalingOptions, custom_config["scaling"], "transform")
    pixels = tf.cast(inputs[IMAGE_KEY], tf.float32)
    return {
        IMAGE_XF_KEY: _SCALERS[options.mode](pixels, options),
        LABEL_KEY: inputs[LABEL_KEY],
    }
