"""bench.common: the one meaning of peak RSS in the benchmarks is the process tree's (run_command); a
ratio of rates measured in pairs has the interval Student's t gives the logs of its rounds (paired_ratio)."""
import math
import sys

import numpy as np
import pytest
import scipy.stats

from bench.common import paired_ratio, run_command

# Two children at once, each holding 150 MiB of touched memory for a second: their sum is the tree's peak
# (the largest single process, what wait4 reports, would be about half of it).
TWO_CHILDREN = """
import subprocess, sys
hold = "import time; b = bytearray(150 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
children = [subprocess.Popen([sys.executable, "-c", hold]) for _ in range(2)]
print(sum(child.wait() for child in children))
"""


def test_peak_rss_is_the_whole_process_tree_at_once():
    measured = run_command([sys.executable, "-c", TWO_CHILDREN], "two children")
    assert measured.stdout.strip() == "0"
    assert measured.peak_rss > 300  # MiB: both children counted together
    assert measured.wall > 1.5


def test_a_failing_command_ends_the_benchmark_in_one_line_naming_it():
    with pytest.raises(SystemExit) as stopped:
        run_command([sys.executable, "-c", "import sys; print('ignored'); sys.exit('no data here')"], "the probe")
    assert str(stopped.value) == "the probe failed: no data here"


def test_a_paired_ratio_is_the_geometric_mean_of_the_rounds_with_the_t_interval_of_their_logs():
    a, b = [400.0, 380.0, 410.0, 300.0, 395.0], [410.0, 400.0, 405.0, 320.0, 400.0]
    logs = np.log(np.array(a) / np.array(b))
    interval = scipy.stats.ttest_1samp(logs, 0.0).confidence_interval(0.95)
    mean, low, high = paired_ratio(a, b)
    assert mean == pytest.approx(math.prod(x / y for x, y in zip(a, b)) ** (1 / len(a)), rel=1e-12)
    assert (low, high) == pytest.approx((math.exp(interval.low), math.exp(interval.high)), rel=1e-12)
    assert low < mean < high


def test_a_slow_spell_moving_both_rates_of_a_round_leaves_the_paired_ratio_alone():
    spells = np.array([1.0, 0.6, 1.1, 0.8])  # the machine's speed in each round
    mean, low, high = paired_ratio(380.0 * spells, 400.0 * spells)
    assert mean == pytest.approx(0.95, rel=1e-12) and (low, high) == pytest.approx((0.95, 0.95), rel=1e-12)


def test_a_paired_ratio_of_one_round_is_an_error_naming_the_count():
    with pytest.raises(ValueError, match=r"needs 2\+ rounds \(got 1\)"):
        paired_ratio([1.0], [2.0])
