"""Outputs removed between two runs of the same command: a run answered from the cache makes again what it
reports and is gone, and never names a path that is not there.

The tests run in order on one output dir, seeded with the first run's ML Metadata (ingest and Transform come
from the cache); each leaves it whole for the next. Its first run also runs under a valid single-worker TF_CONFIG,
which must not stop it.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from pipeline import summary as summary_module
from pipeline.prepare import build_config
from tests.e2e.run_cli import NODES, REPO, read_summary, run_pipeline, seeded_output_dir, states

# One epoch: accurate enough on the slice (0.85) for this bar, so the model is blessed and pushed.
SETTINGS = ("--set", "trainer.epochs=1", "--set", "evaluator.accuracy_threshold=0.8")
SINGLE_WORKER = json.dumps({"cluster": {"worker": ["localhost:2222"]}, "task": {"type": "worker", "index": 0}})


@pytest.fixture(scope="module")
def output_dir(first_run, mnist_slice, tmp_path_factory) -> str:
    output_dir = seeded_output_dir(first_run, tmp_path_factory.mktemp("removed") / "runs")
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS,
                          env={**os.environ, "TF_CONFIG": SINGLE_WORKER})
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


def _rerun(output_dir: str, mnist_slice: str) -> tuple[str, dict]:
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, read_summary(output_dir)


def _ran_again(summary: dict, nodes: tuple) -> None:
    assert states(summary) == {node: "COMPLETE" if node in nodes else "CACHED" for node in NODES}


def test_a_valid_single_worker_tf_config_runs(output_dir):
    summary = read_summary(output_dir)
    _ran_again(summary, ("Trainer", "Evaluator", "TrainingHealthGate", "Pusher"))
    assert summary["blessed"] and os.path.isfile(os.path.join(summary["serving_model"], "saved_model.pb"))


def test_a_removed_serving_model_is_pushed_again(output_dir, mnist_slice):
    removed = read_summary(output_dir)["serving_model"]
    shutil.rmtree(removed)
    stdout, summary = _rerun(output_dir, mnist_slice)
    assert f"gone since they were made: {removed};" in stdout
    _ran_again(summary, ("Pusher",))  # the blessed model, pushed again; nothing trained again
    assert summary["serving_model"] != removed
    assert os.path.isfile(os.path.join(summary["serving_model"], "saved_model.pb"))
    assert f"serving model: {summary['serving_model']}" in stdout


def test_emptied_tensorboard_logs_are_made_again(output_dir, mnist_slice):
    """Emptied, not removed: TFX's own cache check sees only whether the folder exists."""
    logdir = read_summary(output_dir)["tensorboard_logdir"]
    for name in os.listdir(logdir):
        path = os.path.join(logdir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    stdout, summary = _rerun(output_dir, mnist_slice)
    assert f"gone since they were made: {logdir};" in stdout
    _ran_again(summary, ("Trainer", "Evaluator", "TrainingHealthGate", "Pusher"))
    assert summary["tensorboard_logdir"] != logdir
    assert os.path.isfile(os.path.join(summary["tensorboard_logdir"], "gradient_report.json"))
    board = subprocess.run([sys.executable, "-m", "pipeline.tools.tensorboard", "--output-dir", output_dir,
                            "--print-only"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert board.returncode == 0, board.stderr[-2000:]
    assert f"left out 1 Trainer run(s) whose TensorBoard logs are gone: {logdir}" in board.stdout
    runs = [line for line in board.stdout.splitlines() if ": " in line and not line.startswith("left out")]
    assert [line for line in runs if line.endswith(f": {summary['tensorboard_logdir']}")], board.stdout
    assert not [line for line in runs if line.endswith(f": {logdir}")], board.stdout


def test_a_removed_model_is_never_named_and_is_trained_again(output_dir, mnist_slice):
    model = read_summary(output_dir)["model"]
    shutil.rmtree(model)
    # The summary of the run as it stands names no path that is not there.
    config = build_config(None, overrides=SETTINGS[1::2], flags={"data.data_dir": mnist_slice,
                                                                   "pipeline.output_dir": output_dir})
    stale = summary_module.collect_summary(config)
    assert stale["model"] is None and stale["missing"] == [model]
    described = summary_module.describe(stale)
    assert model not in described.replace(f"gone: {model} (removed as the run ended)", "")
    assert "model: (gone: see below)" in described

    stdout, summary = _rerun(output_dir, mnist_slice)
    _ran_again(summary, ("Trainer", "Evaluator", "TrainingHealthGate", "Pusher"))
    assert summary["model"] != model and summary["missing"] == []
    assert os.path.isfile(os.path.join(summary["model"], "Format-Serving", "saved_model.pb"))
    for path in (summary["model"], summary["tensorboard_logdir"], summary["serving_model"], summary["summary_file"]):
        assert os.path.exists(path) and path in stdout
