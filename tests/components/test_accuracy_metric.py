"""The native TFMA accuracy metric against numpy, through TFMA's own computations and combiner."""
import numpy as np
import pytest
from tensorflow_model_analysis.metrics import metric_types

from components.evaluator.accuracy import ACCURACY_NAME, MulticlassAccuracy


def _accumulate(combiner, labels, probabilities, weights):
    accumulator = combiner.create_accumulator()
    for label, prediction, weight in zip(labels, probabilities, weights):
        inputs = metric_types.StandardMetricInputs(
            labels=np.array([label]), predictions=prediction, example_weights=np.array([weight])
        )
        accumulator = combiner.add_input(accumulator, inputs)
    return accumulator


@pytest.mark.parametrize("example_weighted", [False, True])
def test_accuracy_equals_numpy_argmax_accuracy_and_merges(example_weighted):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=300)
    logits = rng.normal(size=(300, 10))
    logits[np.arange(300), labels] += rng.choice([0.0, 3.0], size=300)  # many right, not all
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    weights = rng.uniform(0.5, 2.0, size=300)
    matrices, derived = MulticlassAccuracy().computations(example_weighted=example_weighted)

    halves = [_accumulate(matrices.combiner, labels[s], probabilities[s], weights[s]) for s in (slice(0, 120), slice(120, None))]
    merged = matrices.combiner.merge_accumulators(halves)
    value = derived.result(matrices.combiner.extract_output(merged))

    correct = probabilities.argmax(axis=1) == labels
    expected = np.average(correct, weights=weights if example_weighted else None)
    assert 0.2 < expected < 0.95  # neither all right nor all wrong
    (key,) = value
    assert key.name == ACCURACY_NAME and key.example_weighted == example_weighted
    assert value[key] == pytest.approx(expected, abs=1e-12)


def test_empty_slice_reads_nan_not_zero():
    matrices, derived = MulticlassAccuracy().computations()
    (value,) = derived.result(matrices.combiner.extract_output(matrices.combiner.create_accumulator())).values()
    assert np.isnan(value)
