"""The TFMA EvalConfig: accuracy overall and per label, and the blessing bar."""
from __future__ import annotations

import tensorflow_model_analysis as tfma

from components.evaluator import accuracy
from components.example_gen.records import LABEL_KEY
from components.trainer.export import OUTPUT_KEY, SIGNATURE

ACCURACY_METRIC = accuracy.ACCURACY_NAME


def build_eval_config(accuracy_threshold: float) -> tfma.EvalConfig:
    """Blesses the model when overall eval accuracy >= ``accuracy_threshold``."""
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=SIGNATURE, label_key=LABEL_KEY, prediction_key=OUTPUT_KEY)],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[LABEL_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name=accuracy.MulticlassAccuracy.__name__,
                        module=accuracy.__name__,
                        # The bar applies to the overall slice only; per-label
                        # accuracy is reported, not gated.
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=[tfma.SlicingSpec()],
                                threshold=tfma.MetricThreshold(
                                    value_threshold=tfma.GenericValueThreshold(
                                        lower_bound={"value": accuracy_threshold}
                                    )
                                ),
                            )
                        ],
                    ),
                ],
            )
        ],
    )
