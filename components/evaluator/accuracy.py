"""Top-1 accuracy as a native TFMA metric, derived from TFMA's multi-class confusion matrix.

Why not Keras' SparseCategoricalAccuracy: TFMA runs Keras metrics through a
TensorFlow call per batch, which cost 2.1 s of the Evaluator's 5.2 s on the
10,000 eval images; the confusion-matrix combiner is numpy and cost 0.6 s
(docs/benchmarks.md). The matrix is counted at threshold 0.0, so every example
whose top probability is positive counts with its arg-max class.
"""
from __future__ import annotations

from typing import Dict, Optional

from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.metrics.multi_class_confusion_matrix_metrics import (
    Matrices,
    multi_class_confusion_matrices,
)
from tensorflow_model_analysis.proto import config_pb2

ACCURACY_NAME = "accuracy"
_THRESHOLD = 0.0


class MulticlassAccuracy(metric_types.Metric):
    """Fraction of examples whose arg-max prediction is the label (weighted when asked)."""

    def __init__(self, name: str = ACCURACY_NAME):
        super().__init__(metric_util.merge_per_key_computations(_accuracy_computations), name=name)


metric_types.register_metric(MulticlassAccuracy)


def accuracy_from_matrices(matrices: Matrices) -> float:
    """Diagonal over total of the matrix at the threshold; NaN for an empty slice."""
    entries = matrices.get(_THRESHOLD, {})
    total = sum(entries.values())
    correct = sum(count for key, count in entries.items() if key.actual_class_id == key.predicted_class_id)
    return correct / total if total else float("nan")


def _accuracy_computations(
    name: str = ACCURACY_NAME,
    eval_config: Optional[config_pb2.EvalConfig] = None,
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )
    computations = multi_class_confusion_matrices(
        thresholds=[_THRESHOLD],
        eval_config=eval_config,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
    )
    matrices_key = computations[-1].keys[-1]

    def result(metrics: Dict[metric_types.MetricKey, Matrices]) -> Dict[metric_types.MetricKey, float]:
        return {key: accuracy_from_matrices(metrics[matrices_key])}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations
