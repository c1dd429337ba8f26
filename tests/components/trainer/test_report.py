"""The gradient report's "which came first": the step where the update norm, and where the loss, first spiked."""
import math
import statistics

import numpy as np
import pytest

from components.trainer.report import SPIKE_FACTOR, SPIKE_MIN_HISTORY, GradientReport, first_spike


def _median_rule(values, measured):
    """The rule written out plainly: each measured value against the median of up to 100 finite ones before it."""
    seen = []
    for step, (value, counted) in enumerate(zip(values.tolist(), measured)):
        if not counted:
            continue
        if len(seen) >= 10 and not (math.isfinite(value) and value <= 5.0 * statistics.median(seen[-100:])):
            return step
        if math.isfinite(value):
            seen.append(value)
    return None


@pytest.mark.parametrize("seed", range(5))
def test_first_spike_follows_the_running_median_rule(seed):
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 0.3, 400).astype(np.float32)
    values[rng.integers(50, 400, 3)] *= rng.uniform(3, 12, 3)  # spikes of several heights, some under the factor
    measured = rng.random(400) > 0.1
    assert first_spike(values, measured) == _median_rule(values, measured)


def test_what_counts_and_what_sets_no_baseline():
    steady = np.ones(30, np.float32)
    assert first_spike(steady, np.ones(30, bool)) is None
    early = steady.copy()
    early[SPIKE_MIN_HISTORY - 1] = 100.0  # before a baseline exists: not a spike
    assert first_spike(early, np.ones(30, bool)) is None
    late = steady.copy()
    late[20] = SPIKE_FACTOR * 1.01
    assert first_spike(late, np.ones(30, bool)) == 20
    late[15] = np.nan  # a non-finite loss is the spike it ends in
    assert first_spike(late, np.ones(30, bool)) == 15
    assert first_spike(late, ~np.isnan(late)) == 20  # where NaN means "not measured", it is passed over


def _report(losses, updates, every=1):
    n = len(losses)
    return GradientReport.build(
        pre_clip_norms=np.ones(n, np.float32), losses=np.asarray(losses, np.float32), clipped_steps=0,
        nonfinite_steps=0, first_clipped_step=-1, variable_names=["w"], max_variable_norms=np.ones(1),
        first_nonfinite_step=-1, diverged_at_step=None, last_finite_norms=np.ones(1), eval_accuracy=0.9,
        update_norms=None if updates is None else np.asarray(updates, np.float32), update_every_n_steps=every,
    )


def test_the_report_says_which_came_first_in_one_line():
    losses, updates = np.ones(40), np.ones(40)
    updates[25], losses[28] = 50.0, 50.0
    report = _report(losses, updates)
    assert (report.first_update_spike_step, report.first_loss_spike_step) == (25, 28)
    assert "first spike (above 5x the median of the 100 steps before): update norm at step 25, loss at step 28: " \
           "the update norm first" in report.lines()
    assert _report(losses, np.ones(40)).spike_order().endswith("update norm at never, loss at step 28: the loss first")
    assert _report(np.ones(40), np.ones(40)).spike_order() == \
        "spikes (above 5x the median of the 100 steps before): neither the update norm nor the loss"
    skipped = np.ones(40)
    skipped[30] = 0.0  # a skipped step applied no update: not a dip in the baseline, not a value
    assert _report(np.ones(40), skipped).first_update_spike_step is None
    unmeasured = _report(losses, None)
    assert not unmeasured.updates_measured and unmeasured.first_loss_spike_step == 28
    assert not any("spike" in line for line in unmeasured.lines())


@pytest.mark.parametrize("loss_step,order", [
    (110, "the loss first"),  # the update norm was measured at step 110, below its spike
    (115, "between two measurements of the update norm: set telemetry.update_every_n_steps = 1 to order them"),
    (120, "between two measurements of the update norm: set telemetry.update_every_n_steps = 1 to order them"),
    (125, "the update norm first"),
])
def test_update_norms_measured_every_tenth_step_order_a_loss_spike_only_outside_their_gap(loss_step, order):
    """The update norm seen spiking at step 120 spiked somewhere in 111-120: a loss spike there is not ordered."""
    losses, updates = np.ones(200), np.full(200, np.nan)
    updates[::10] = 1.0
    updates[120], losses[loss_step] = 50.0, 50.0
    line = _report(losses, updates, every=10).spike_order()
    assert line == ("first spike (above 5x the median of the 100 steps before; the update norm measured every 10 steps): "
                    f"update norm at step 120, loss at step {loss_step}: {order}")
