"""The native TFMA accuracy metric against numpy, through TFMA's own computation API."""
import numpy as np
import pytest
from tensorflow_model_analysis.metrics import metric_types

from components.evaluator.accuracy import ACCURACY_NAME, MulticlassAccuracy


def _combiner(example_weighted: bool = False):
    (computation,) = MulticlassAccuracy().computations(example_weighted=example_weighted)
    return computation.combiner


def _inputs(label, scores, weight=1.0):
    return metric_types.StandardMetricInputs(
        labels=np.array([label]), predictions=np.asarray(scores), example_weights=np.array([weight])
    )


def _accumulate(combiner, labels, probabilities, weights):
    accumulator = combiner.create_accumulator()
    for label, prediction, weight in zip(labels, probabilities, weights):
        accumulator = combiner.add_input(accumulator, _inputs(label, prediction, weight))
    return accumulator


@pytest.mark.parametrize("example_weighted", [False, True])
def test_accuracy_equals_numpy_argmax_accuracy_and_merges(example_weighted):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=300)
    logits = rng.normal(size=(300, 10))
    logits[np.arange(300), labels] += rng.choice([0.0, 3.0], size=300)  # many right, not all
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    weights = rng.uniform(0.5, 2.0, size=300)
    combiner = _combiner(example_weighted)

    halves = [_accumulate(combiner, labels[s], probabilities[s], weights[s]) for s in (slice(0, 120), slice(120, None))]
    value = combiner.extract_output(combiner.merge_accumulators(halves))

    correct = probabilities.argmax(axis=1) == labels
    expected = np.average(correct, weights=weights if example_weighted else None)
    assert 0.2 < expected < 0.95  # neither all right nor all wrong
    (key,) = value
    assert key.name == ACCURACY_NAME and key.example_weighted == example_weighted
    assert value[key] == pytest.approx(expected, abs=1e-12)


def test_empty_slice_reads_nan_not_zero():
    combiner = _combiner()
    (value,) = combiner.extract_output(combiner.create_accumulator()).values()
    assert np.isnan(value)


@pytest.mark.parametrize("label,scores", [([1, 2], [0.2, 0.8]), (1, [0.9]), (1, [[0.1, 0.9]])])
def test_inputs_it_cannot_score_are_named(label, scores):
    combiner = _combiner()
    with pytest.raises(ValueError, match="one integer label and one vector of class scores"):
        combiner.add_input(combiner.create_accumulator(), _inputs(label, scores))
