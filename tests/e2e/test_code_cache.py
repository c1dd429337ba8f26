"""A code change is never answered from the cache: edit a temporary checkout's code, run again, and exactly the
components that run the edited file, and those after them, run again."""
import os

import pytest

from tests.e2e.run_cli import COMMON, NODES, copy_checkout, edit, read_summary, run_pipeline, seeded_output_dir, states

UPSTREAM = ["ImportSchemaGen", "MnistExampleGen", "StatisticsGen", "ExampleValidator", "AnomalyGate"]
DOWNSTREAM = ["Trainer", "Evaluator", "TrainingHealthGate", "Pusher"]


def _run(checkout, mnist_slice, output_dir):
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON, cwd=checkout)
    assert result.returncode == 0, result.stderr[-3000:]
    return read_summary(output_dir)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    return copy_checkout(str(tmp_path_factory.mktemp("checkout")))


def test_edits_rerun_exactly_the_components_that_run_them(checkout, first_run, mnist_slice, tmp_path):
    # Seeded with the first run's ML Metadata, made from the project's own folder: ingest and statistics come
    # from the cache (the copy's code is the same by content); the schema is a file of the copy, another path, so
    # it and everything after it run.
    output_dir = seeded_output_dir(first_run, tmp_path / "runs")
    first = _run(checkout, mnist_slice, output_dir)
    cached = ("MnistExampleGen", "StatisticsGen")
    assert states(first) == {n: "CACHED" if n in cached else "COMPLETE" for n in NODES}
    assert states(_run(checkout, mnist_slice, output_dir)) == dict.fromkeys(NODES, "CACHED")  # unchanged tree

    # The scenario: the `divide` scaler made to return zeros. With the cache on, the new code runs.
    edit(os.path.join(checkout, "components", "transform", "preprocessing.py"),
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
