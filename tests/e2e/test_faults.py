"""Faults: SIGKILL mid-training then resume, Ctrl-C, and two runs on one output directory."""
import glob
import os
import signal
import subprocess
import sys
import time

import pytest

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


def test_sigkill_mid_training_then_resume(mnist_slice, tmp_path):
    output_dir = str(tmp_path / "runs")
    args = ("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    process = _start(*args)
    _wait_for(os.path.join(output_dir, "checkpoints", "*", "checkpoint"), process)  # written last by a save
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)

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

    uninterrupted = str(tmp_path / "uninterrupted")
    reference = run_pipeline("--data-dir", mnist_slice, "--output-dir", uninterrupted, *SETTINGS)
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert summary["eval_accuracy"] == pytest.approx(read_summary(uninterrupted)["eval_accuracy"], abs=0.01)


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(mnist_slice, tmp_path):
    output_dir = str(tmp_path / "runs")
    process = _start("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    _wait_for(os.path.join(output_dir, "checkpoints", "*", "checkpoint"), process)  # written last by a save
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
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
