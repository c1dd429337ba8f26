"""Faults: Ctrl-C, SIGTERM and SIGKILL mid-training, each resumed by the same command, and two runs on one output
directory."""
import glob
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from pipeline import metadata
from pipeline.lock import exclusive
from tests.e2e.run_cli import REPO, read_summary, run_pipeline, seeded_output_dir

# Long enough (60 short epochs on the slice) to be caught mid-training.
SETTINGS = ("--set", "trainer.epochs=60", "--set", "trainer.checkpoint_every_n_steps=100",
            "--set", "evaluator.accuracy_threshold=0.9", "--set", "telemetry.histogram_every_n_steps=200")


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.run", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _newest_checkpoint(output_dir: str) -> int:
    """The step of the Trainer's newest checkpoint: its state file names it, written last (and atomically) by a save."""
    steps = [-1]
    for path in glob.glob(os.path.join(output_dir, "checkpoints", "*", "checkpoint")):
        with open(path) as f:
            steps += [int(step) for step in re.findall(r'^model_checkpoint_path: "ckpt-(\d+)"', f.read(), re.M)]
    return max(steps)


def _stopped_after_a_checkpoint(args: tuple, output_dir: str, stop) -> tuple:
    """Starts the run, waits for a checkpoint newer than any before it, stops the run with ``stop``;
    returns its exit status, stdout and stderr."""
    before = _newest_checkpoint(output_dir)
    process = _start(*args)
    deadline = time.time() + 600
    while _newest_checkpoint(output_dir) <= before:
        assert process.poll() is None, "the run ended before reaching the point to interrupt it"
        assert time.time() < deadline, "no new checkpoint within 10 min"
        time.sleep(0.05)
    stop(process)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


@pytest.fixture(scope="module")
def uninterrupted(first_run, mnist_slice, tmp_path_factory) -> str:
    """The output dir of the run the interrupted ones must end like (its ingest and Transform from the cache)."""
    output_dir = seeded_output_dir(first_run, tmp_path_factory.mktemp("uninterrupted") / "runs")
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


def _weights(output_dir: str) -> dict:
    """The served model's variables, by name."""
    reader = tf.train.load_checkpoint(os.path.join(read_summary(output_dir)["model"], "Format-Serving", "variables",
                                                   "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if "VARIABLE_VALUE" in name}


def test_ctrl_c_sigterm_and_sigkill_each_stop_a_run_that_the_same_command_resumes(first_run, mnist_slice, tmp_path,
                                                                                 uninterrupted):
    """One run stopped three ways in turn, each after a new checkpoint, then run to its end: Ctrl-C (SIGINT to
    the process group, as a terminal sends it), SIGTERM to the run's own process (as kill, docker stop,
    Kubernetes and Airflow send it), SIGKILL (nothing runs after it). Each stop is one line or none, nothing
    is published, and every run after the first resumes; the model at the end is the uninterrupted one."""
    output_dir = seeded_output_dir(first_run, tmp_path / "runs")
    args = ("--data-dir", mnist_slice, "--output-dir", output_dir, *SETTINGS)

    code, _, stderr = _stopped_after_a_checkpoint(args, output_dir, lambda p: os.killpg(p.pid, signal.SIGINT))
    assert code == 128 + signal.SIGINT
    assert stderr.strip().splitlines()[-1].startswith("clipflow: interrupted. Run the same command again to resume")
    assert "Traceback" not in stderr

    code, stdout, stderr = _stopped_after_a_checkpoint(args, output_dir, lambda p: p.send_signal(signal.SIGTERM))
    assert code == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1].startswith(
        "clipflow: stopped by SIGTERM. Run the same command again to resume"), stderr[-2000:]
    assert "Traceback" not in stderr and "Trainer: resuming from the checkpoint at step" in stdout
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    trainers = [e for e in metadata.run_executions(store, metadata.latest_run_id(store)) if e.node == "Trainer"]
    assert [t.state for t in trainers] == ["RUNNING"] and not trainers[0].outputs.get("model")  # nothing published
    assert not os.path.exists(os.path.join(output_dir, "serving_model"))
    assert not os.path.exists(os.path.join(output_dir, "summary.json"))

    code, stdout, _ = _stopped_after_a_checkpoint(args, output_dir, lambda p: os.killpg(p.pid, signal.SIGKILL))
    assert code == -signal.SIGKILL and "Trainer: resuming from the checkpoint at step" in stdout

    result = run_pipeline(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Trainer: resuming from the checkpoint at step" in result.stdout
    summary = read_summary(output_dir)
    states = {node: info["state"] for node, info in summary["components"].items()}
    for node in ("MnistExampleGen", "StatisticsGen", "Transform"):
        assert states[node] == "CACHED", states
    assert states["Trainer"] == "COMPLETE"
    report = summary["gradient_report"]
    assert report["resumed_from_step"] >= 300  # the third run's checkpoint at least (or the one before the kill)
    assert report["steps"] == 60 * 32  # the step count continues: nothing lost, nothing repeated
    ours, reference = _weights(output_dir), _weights(uninterrupted)
    assert ours.keys() == reference.keys() and len(ours) == 6
    for name, value in reference.items():
        np.testing.assert_allclose(ours[name], value, atol=1e-6, err_msg=name)
    assert summary["eval_accuracy"] == pytest.approx(read_summary(uninterrupted)["eval_accuracy"], abs=1e-6)


def test_second_run_on_a_busy_output_dir_refuses_at_once(tmp_path, mnist_slice):
    output_dir = str(tmp_path / "runs")
    with exclusive(output_dir):  # as a running pipeline holds it
        started = time.time()
        result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir)
    assert result.returncode == 2
    assert f"another clipflow run (pid {os.getpid()}) is using {output_dir}" in result.stderr
    assert time.time() - started < 60
    assert not os.path.exists(os.path.join(output_dir, "pipeline"))  # nothing ran
