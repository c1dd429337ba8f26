"""A code change is never answered from the cache: edit a temporary checkout's code, run again, and exactly the
components that run the edited file, and those after them, run again."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.e2e.run_cli import COMMON, NODES, REPO, read_summary, states

UPSTREAM = ["ImportSchemaGen", "MnistExampleGen", "StatisticsGen", "ExampleValidator", "AnomalyGate"]
DOWNSTREAM = ["Trainer", "Evaluator", "TrainingHealthGate", "Pusher"]


def _run(checkout, mnist_slice, output_dir):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.run", "--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON],
        cwd=checkout, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return read_summary(output_dir)


def _edit(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A temporary checkout: the project's code, run from its own folder (Python imports it from there)."""
    root = tmp_path_factory.mktemp("checkout")
    for folder in ("components", "pipeline", "schemas"):
        shutil.copytree(os.path.join(REPO, folder), root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return str(root)


def test_edits_rerun_exactly_the_components_that_run_them(checkout, mnist_slice, tmp_path):
    output_dir = str(tmp_path / "runs")
    first = _run(checkout, mnist_slice, output_dir)
    assert states(first) == dict.fromkeys(NODES, "COMPLETE")
    assert states(_run(checkout, mnist_slice, output_dir)) == dict.fromkeys(NODES, "CACHED")  # unchanged tree

    # The scenario: the `divide` scaler made to return zeros. With the cache on, the new code runs.
    _edit(os.path.join(checkout, "components", "transform", "preprocessing.py"),
          '"divide": lambda pixels, options: pixels / options.divisor', '"divide": lambda pixels, options: pixels * 0.0')
    zeroed = _run(checkout, mnist_slice, output_dir)
    assert {n: states(zeroed)[n] for n in UPSTREAM} == dict.fromkeys(UPSTREAM, "CACHED")
    assert {n: states(zeroed)[n] for n in ["Transform", *DOWNSTREAM]} == dict.fromkeys(["Transform", *DOWNSTREAM], "COMPLETE")
    assert first["eval_accuracy"] > 0.85 and zeroed["eval_accuracy"] < 0.2  # all-zero inputs: one class

    # A comment is a change too; the Trainer's code is not Transform's.
    with open(os.path.join(checkout, "components", "trainer", "loop.py"), "a") as f:
        f.write("# an edited comment\n")
    commented = _run(checkout, mnist_slice, output_dir)
    assert {n: states(commented)[n] for n in [*UPSTREAM, "Transform"]} == dict.fromkeys([*UPSTREAM, "Transform"], "CACHED")
    assert {n: states(commented)[n] for n in DOWNSTREAM} == dict.fromkeys(DOWNSTREAM, "COMPLETE")
