"""Faults: SIGKILL or SIGTERM mid-training then resume, Ctrl-C, and two runs on one output directory."""
import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from pipeline import metadata
from pipeline.lock import exclusive
from tests.e2e.run_cli import REPO, read_summary, run_pipeline

# Long enough (60 short epochs on the slice) to be caught mid-training.
SETTINGS = ("--set", "trainer.epochs=60", "--set", "trainer.checkpoint_every_n_steps=100",
            "--set", "evaluator.accuracy_threshold=0.9", "--set", "telemetry.histogram_every_n_steps=200")


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.run", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(pattern: str, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not glob.glob(pattern):
        assert process.poll() is None, "the run ended before reaching the point to interrupt it"
        assert time.time() < deadline, f"nothing matched {pattern}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(mnist_slice, tmp_path_factory) -> str:
    """The output dir of the run the interrupted ones must end like."""
    output_dir = str(tmp_path_factory.mktemp("uninterrupted"))
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


def _weights(output_dir: str) -> dict:
    """The served model's variables, by name."""
    reader = tf.train.load_checkpoint(os.path.join(read_summary(output_dir)["model"], "Format-Serving", "variables",
                                                   "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if "VARIABLE_VALUE" in name}


def _resume_to_the_uninterrupted_model(args: tuple, output_dir: str, uninterrupted: str) -> None:
    result = run_pipeline(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Trainer: resuming from the checkpoint at step" in result.stdout
    summary = read_summary(output_dir)
    states = {node: info["state"] for node, info in summary["components"].items()}
    for node in ("MnistExampleGen", "StatisticsGen", "Transform"):
        assert states[node] == "CACHED", states
    assert states["Trainer"] == "COMPLETE"
    report = summary["gradient_report"]
    assert report["resumed_from_step"] >= 100
    assert report["steps"] == 60 * 32  # the step count continues: nothing lost, nothing repeated
    ours, reference = _weights(output_dir), _weights(uninterrupted)
    assert ours.keys() == reference.keys() and len(ours) == 6
    for name, value in reference.items():
        np.testing.assert_allclose(ours[name], value, atol=1e-6, err_msg=name)
    assert summary["eval_accuracy"] == pytest.approx(read_summary(uninterrupted)["eval_accuracy"], abs=1e-6)


def test_sigkill_mid_training_then_resume(mnist_slice, tmp_path, uninterrupted):
    output_dir = str(tmp_path / "runs")
    args = ("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    process = _start(*args)
    _wait_for(os.path.join(output_dir, "checkpoints", "*", "checkpoint"), process)  # written last by a save
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    _resume_to_the_uninterrupted_model(args, output_dir, uninterrupted)


def test_sigterm_stops_like_ctrl_c_and_the_same_command_resumes(mnist_slice, tmp_path, uninterrupted):
    """SIGTERM to the run's own process, as kill, docker stop, Kubernetes and Airflow send it."""
    output_dir = str(tmp_path / "runs")
    args = ("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    process = _start(*args)
    _wait_for(os.path.join(output_dir, "checkpoints", "*", "checkpoint"), process)  # written last by a save
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1].startswith(
        "clipflow: stopped by SIGTERM. Run the same command again to resume"), stderr[-2000:]
    assert "Traceback" not in stderr
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    trainers = metadata.node_executions(store, "Trainer")
    assert [t.state for t in trainers] == ["RUNNING"] and not trainers[0].outputs.get("model")  # nothing published
    assert not os.path.exists(os.path.join(output_dir, "serving_model"))
    assert not os.path.exists(os.path.join(output_dir, "summary.json"))
    _resume_to_the_uninterrupted_model(args, output_dir, uninterrupted)


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(mnist_slice, tmp_path):
    output_dir = str(tmp_path / "runs")
    process = _start("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    _wait_for(os.path.join(output_dir, "checkpoints", "*", "checkpoint"), process)  # written last by a save
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT
    assert stderr.strip().splitlines()[-1].startswith("clipflow: interrupted. Run the same command again to resume")
    assert "Traceback" not in stderr


def test_second_run_on_a_busy_output_dir_refuses_at_once(tmp_path, mnist_slice):
    output_dir = str(tmp_path / "runs")
    with exclusive(output_dir):  # as a running pipeline holds it
        started = time.time()
        result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir)
    assert result.returncode == 2
    assert f"another clipflow run (pid {os.getpid()}) is using {output_dir}" in result.stderr
    assert time.time() - started < 60
    assert not os.path.exists(os.path.join(output_dir, "pipeline"))  # nothing ran
