import dataclasses

import pytest

from components.common.errors import ConfigError
from components.trainer.report import GradientReport
from components.validation.options import HealthOptions

HEALTHY = GradientReport(
    steps=100, max_pre_clip_norm=3.0, median_pre_clip_norm=1.0, p99_pre_clip_norm=2.5, clipped_fraction=0.1,
    nonfinite_steps=0, first_clipped_step=4, largest_norm_variable="dense_0/kernel", largest_norm_value=2.0,
    first_nonfinite_step=None, diverged_at_step=None, last_finite_norms={"dense_0/kernel": 2.0}, final_loss=0.1,
    eval_accuracy=0.97,
)


def test_off_by_default():
    diverged = dataclasses.replace(HEALTHY, diverged_at_step=40, nonfinite_steps=10)
    assert HealthOptions().problems(diverged) == []


def test_each_bar():
    options = HealthOptions(enabled=True, max_nonfinite_steps=2, max_clipped_fraction=0.25)
    assert options.problems(HEALTHY) == []
    assert options.problems(dataclasses.replace(HEALTHY, clipped_fraction=0.5)) == [
        "50.0% of steps clipped (allowed 25.0%)"]
    assert options.problems(dataclasses.replace(HEALTHY, nonfinite_steps=3)) == ["3 non-finite steps (allowed 2)"]
    assert options.problems(dataclasses.replace(HEALTHY, diverged_at_step=7, nonfinite_steps=2)) == [
        "training diverged at step 7"]


def test_bad_values():
    with pytest.raises(ConfigError, match="health.max_clipped_fraction must be in"):
        HealthOptions(max_clipped_fraction=2.0)
    with pytest.raises(ConfigError, match="health.max_nonfinite_steps must be >= 0"):
        HealthOptions(max_nonfinite_steps=-1)
