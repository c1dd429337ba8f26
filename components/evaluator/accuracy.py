"""Top-1 accuracy as a native TFMA metric: weighted (correct, total) counts in numpy.

Why not Keras' SparseCategoricalAccuracy: TFMA runs Keras metrics through a
TensorFlow call per batch, most of the Evaluator's time. Why not a metric
derived from TFMA's multi-class confusion matrix: its per-example input
handling is generic (sub keys, class weights, multi-output dicts) and slow;
this one costs next to nothing (numbers: docs/benchmarks.md). It accepts what this model gives, one integer label
and one vector of class scores per example, and names anything else.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

ACCURACY_NAME = "accuracy"


class MulticlassAccuracy(metric_types.Metric):
    """Fraction of examples whose arg-max prediction is the label (weighted when asked)."""

    def __init__(self, name: str = ACCURACY_NAME):
        super().__init__(metric_util.merge_per_key_computations(_accuracy_computations), name=name)


metric_types.register_metric(MulticlassAccuracy)


class _AccuracyCombiner(beam.CombineFn):
    """Accumulates ``[weighted correct, weighted total]`` over a slice."""

    def __init__(self, key: metric_types.MetricKey, example_weighted: bool):
        self._key = key
        self._example_weighted = example_weighted

    def _get(self, getter) -> Any:
        return getter(self._key.model_name or None, self._key.output_name or None)

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(2)

    def add_input(self, accumulator: np.ndarray, element: metric_types.StandardMetricInputs) -> np.ndarray:
        label = np.asarray(self._get(element.get_labels))
        scores = np.asarray(self._get(element.get_predictions))
        if label.size != 1 or scores.ndim != 1 or scores.size < 2:
            raise ValueError(
                "accuracy needs one integer label and one vector of class scores per example; "
                f"got label shape {label.shape}, prediction shape {scores.shape}"
            )
        weights = self._get(element.get_example_weights) if self._example_weighted else None
        weight = 1.0 if weights is None else float(np.asarray(weights).reshape(-1)[0])
        accumulator[0] += weight * (int(np.argmax(scores)) == int(label.reshape(-1)[0]))
        accumulator[1] += weight
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accumulators), axis=0)

    def extract_output(self, accumulator: np.ndarray) -> Dict[metric_types.MetricKey, float]:
        correct, total = accumulator
        return {self._key: correct / total if total else float("nan")}


def _accuracy_computations(
    name: str = ACCURACY_NAME,
    eval_config: Optional[config_pb2.EvalConfig] = None,  # noqa: ARG001  (TFMA passes it to every metric)
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )
    return [metric_types.MetricComputation(keys=[key], preprocessors=None, combiner=_AccuracyCombiner(key, example_weighted))]
