"""Non-finite gradients, under every strategy (the guard wraps each): the update is skipped, counted,
logged; K in a row stop training."""
import math

import numpy as np
import pytest
import tensorflow as tf

from components.trainer.model import MLP
from components.trainer.data import InMemorySplit
from components.trainer.options import STRATEGIES, ClipOptions
from pipeline.tools.events import read_run
from tests.components.trainer.helpers import synthetic_split, tiny_run

pytestmark = pytest.mark.slow  # trains a real model per strategy


def _poisoned(rows):
    split = synthetic_split()
    images = split.images.numpy()
    images[rows, 0] = math.inf
    return InMemorySplit(tf.constant(images), split.labels)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_all_non_finite_stops_after_k_steps_and_changes_no_weight(tmp_path, strategy):
    logdir = str(tmp_path)
    clip = ClipOptions(strategy=strategy, max_consecutive_nonfinite=3)
    (model, report), options = tiny_run(logdir, train_split=_poisoned([5]), clip=clip)
    assert report.steps == 3
    assert report.nonfinite_steps == 3
    assert report.diverged_at_step == 2 and report.first_nonfinite_step == 0
    assert report.last_finite_norms == {name: 0.0 for name in report.last_finite_norms}  # no finite step
    assert "training diverged at step 2 (first non-finite step 0" in "\n".join(report.lines())
    untouched = MLP(options.hidden_units, options.init, options.seed)
    for trained, initial in zip(model.variables_in_order, untouched.variables_in_order):
        np.testing.assert_array_equal(trained.numpy(), initial.numpy())
    events = read_run(logdir)
    assert {s: float(v) for s, v in events["nonfinite/steps"].items()} == {0: 1.0, 1: 2.0, 2: 3.0}
    assert "loss" not in events and "grad_norm/pre_clip" not in events  # nothing NaN written
    assert not any(tag.startswith("grad_hist/") for tag in events)


def test_isolated_non_finite_steps_are_skipped_and_training_goes_on(tmp_path):
    logdir = str(tmp_path)
    # Batches of 16 over 64 examples: each epoch exactly one batch holds the poisoned row.
    (model, report), _ = tiny_run(logdir, train_split=_poisoned([7]), epochs=5, batch_size=16, every=1)
    assert report.steps == 20
    assert report.nonfinite_steps == 5
    assert report.diverged_at_step is None
    assert report.first_nonfinite_step is not None and report.first_nonfinite_step < 4
    assert all(np.isfinite(v.numpy()).all() for v in model.variables_in_order)
    events = read_run(logdir)
    assert len(events["grad_norm/pre_clip"]) == 15
    assert float(events["nonfinite/steps"][19]) == 5.0
    for tag, series in events.items():
        for value in series.values():
            assert np.isfinite(value).all(), tag
    assert len(events["grad_hist/dense_0/kernel/pre_clip"]) == 15  # every step but the skipped ones
