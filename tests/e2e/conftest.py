import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.shared import made_once
from tests.e2e.run_cli import COMMON, FIRST_SUMMARY, REPO, run_pipeline


def pytest_collection_modifyitems(items):
    """Everything under tests/e2e is marked e2e (`make test-fast` deselects them)."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def first_run(mnist_slice, tmp_path_factory):
    """The local runner's run on the slice, one for all workers: checked by test_pipeline, the reference of
    test_runners, the seed of other tests' output dirs (run_cli.seeded_output_dir).

    Only test_pipeline re-runs in the same output dir; the first pipeline run stays in its ML Metadata."""
    def make(folder: str) -> dict:
        output_dir = os.path.join(folder, "runs")
        result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON)
        assert result.returncode == 0, result.stderr[-3000:]
        shutil.copy(os.path.join(output_dir, "summary.json"), os.path.join(output_dir, FIRST_SUMMARY))
        return {"output_dir": output_dir, "args": result.args, "stdout": result.stdout, "stderr": result.stderr}

    made = made_once(tmp_path_factory, "first_run", make)
    return made["output_dir"], subprocess.CompletedProcess(made["args"], 0, made["stdout"], made["stderr"])


@pytest.fixture(scope="session")
def experiment(mnist_slice, tmp_path_factory):
    """``pipeline.tools.experiment explode`` on the slice, 2 epochs: two Trainer runs (clipping off, on) in one output
    dir, one for all workers."""
    def make(output_dir: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.tools.experiment", "explode", "--data-dir", mnist_slice, "--output-dir",
             output_dir, "--epochs", "2", "--set", "telemetry.histogram_every_n_steps=50"],
            capture_output=True, text=True, timeout=900, cwd=REPO,
        )
        assert result.returncode == 0, result.stderr[-3000:]  # divergence is an outcome, not a failure
        return {"output_dir": output_dir, "args": result.args, "stdout": result.stdout, "stderr": result.stderr}

    made = made_once(tmp_path_factory, "explode", make)
    with open(os.path.join(made["output_dir"], "experiment.json")) as f:
        result = subprocess.CompletedProcess(made["args"], 0, made["stdout"], made["stderr"])
        return made["output_dir"], result, json.load(f)
