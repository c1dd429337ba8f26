"""bench.common.run_command: the one meaning of peak RSS in the benchmarks is the process tree's."""
import sys

import pytest

from bench.common import run_command

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
