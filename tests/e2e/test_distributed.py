"""Two real worker processes under MultiWorkerMirroredStrategy (TF_CONFIG naming two localhost ports):
the gradient is summed across workers before it is clipped, so two workers train the model one process
trains on the same global batches, and only the chief writes logs."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import portpicker
import pytest

from pipeline.tools.events import read_run
from tests.e2e.run_cli import REPO

WORKER = [sys.executable, "-m", "tests.e2e.distributed_worker"]


def start_workers(data_dir: str, out_dir: str, variants: str, workers: int) -> list:
    """``workers`` processes of one cluster (none: a single process without TF_CONFIG), each training the
    comma-separated ``variants`` in turn into ``out_dir/<variant>``."""
    os.makedirs(out_dir, exist_ok=True)
    ports = [portpicker.pick_unused_port() for _ in range(workers)]
    processes = []
    for index in range(max(workers, 1)):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("TF_CONFIG", None)
        if workers:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                           "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen([*WORKER, data_dir, out_dir, variants], cwd=REPO, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return processes


def finish(processes: list) -> list:
    """Each process's output, once all ended; any that failed fails the test."""
    try:
        outputs = [process.communicate(timeout=300)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return outputs


def run_workers(data_dir: str, out_dir: str, variants: str, workers: int) -> list:
    return finish(start_workers(data_dir, out_dir, variants, workers))


def weights(path: str):
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


# In each process, in this order (the single process's list is the cluster's prefix: the same history).
SINGLE = ("after", "streamed", "spike", "resumable")
CLUSTER = ("after", "streamed", "spike", "before")


@pytest.fixture(scope="module")
def runs(mnist_slice, tmp_path_factory):
    """One process trains every single-process variant, one two-worker cluster every other: both at once."""
    root = tmp_path_factory.mktemp("distributed")
    single = start_workers(mnist_slice, str(root / "single"), ",".join(SINGLE), 0)
    two = start_workers(mnist_slice, str(root / "two"), ",".join(CLUSTER), 2)
    finish(single + two)
    return root


def matches_one_process(runs, variant: str) -> list:
    """The two workers' weights equal the single process's (1e-5) and each other's exactly (mirrored: the
    same update on every worker); returns the single process's."""
    single = weights(runs / "single" / variant / "weights-worker-0.npz")
    chief = weights(runs / "two" / variant / "weights-worker-0.npz")
    other = weights(runs / "two" / variant / "weights-worker-1.npz")
    for one, a, b in zip(single, chief, other):
        np.testing.assert_allclose(a, one, atol=1e-5)
        np.testing.assert_array_equal(a, b)
    return single


def test_two_workers_train_the_model_one_process_trains(runs):
    matches_one_process(runs, "after")


def test_two_workers_streaming_a_spilled_split_train_the_model_one_process_trains(runs):
    """Every worker streams the same blocks (of several lengths) and trains on its share of each batch."""
    single = matches_one_process(runs, "streamed")
    in_memory = weights(runs / "single" / "after" / "weights-worker-0.npz")  # 1 epoch of another order: another model
    assert max(np.abs(a - b).max() for a, b in zip(single, in_memory)) > 1e-3


def test_two_workers_take_the_spike_guards_decision_together(runs):
    """The guard judges the loss and norm summed across workers, in the graph: each worker skips the
    injected spike, and no other step, as one process does; the weights stay mirrored."""
    reports = []
    for run, task in (("single", 0), ("two", 0), ("two", 1)):
        with open(runs / run / "spike" / f"report-worker-{task}.json") as f:
            reports.append(json.load(f))
    assert [r["skipped_spikes"] for r in reports] == [1, 1, 1]
    assert len({r["steps"] for r in reports}) == 1
    single = matches_one_process(runs, "spike")
    unspiked = weights(runs / "single" / "after" / "weights-worker-0.npz")  # 7 of the same 8 steps: another model
    assert max(np.abs(a - b).max() for a, b in zip(single, unspiked)) > 1e-4
    skipped = read_run(str(runs / "two" / "spike" / "logs"))["skip/spikes"]
    assert {int(s): float(v) for s, v in skipped.items()} == {s: float(s >= 6) for s in range(8)}


def test_the_chief_logs_the_norms_of_the_summed_gradient(runs):
    single, chief = read_run(str(runs / "single" / "after" / "logs")), read_run(str(runs / "two" / "after" / "logs"))
    for tag in ("grad_norm/pre_clip", "grad_norm/post_clip", "loss"):
        assert sorted(chief[tag]) == sorted(single[tag]) == list(range(8)), tag
        for step, value in single[tag].items():
            assert float(chief[tag][step]) == pytest.approx(float(value), rel=1e-5), (tag, step)
    assert all(float(v) > 0.05 for v in single["grad_norm/pre_clip"].values())  # the clip binds at every step
    for run in ("train", "eval"):  # one writer: the chief's (the other worker logs to a folder of its own)
        assert len(glob.glob(str(runs / "two" / "after" / "logs" / run / "events.out.tfevents.*"))) == 1


def test_one_process_and_two_workers_measure_the_same_gradient_noise_scale(runs):
    """One process from its batch's halves, two workers from their shares before the all-reduce: the same two
    batch sizes (64 and 128), so the same estimate; the issue asks for agreement within x1.5."""
    reports = {}
    for run in ("single", "two"):
        with open(runs / run / "after" / "report-worker-0.json") as f:
            reports[run] = json.load(f)
    single, two = reports["single"]["noise_scale"], reports["two"]["noise_scale"]
    assert single is not None and single > 0 and two is not None
    assert 1 / 1.5 < two / single < 1.5
    assert two == pytest.approx(single, rel=1e-3)  # in fact the same: the same halves, summed in another order
    logged = {run: read_run(str(runs / run / "after" / "logs"))["noise/b_simple"] for run in ("single", "two")}
    assert sorted(logged["two"]) == sorted(logged["single"])
    assert float(logged["two"][7]) == pytest.approx(two, rel=1e-5)


def test_clipping_each_workers_share_before_the_sum_is_another_algorithm(runs):
    single = weights(runs / "single" / "after" / "weights-worker-0.npz")
    before = weights(runs / "two" / "before" / "weights-worker-0.npz")
    assert max(np.abs(a - b).max() for a, b in zip(single, before)) > 1e-3


def test_the_trainer_module_starts_no_tensorflow_runtime_on_import():
    """MultiWorkerMirroredStrategy configures collective ops at start-up: run_fn must create it before any op."""
    code = ("import components.trainer.run_fn; from tensorflow.python.eager import context; "
            "print(context.context()._context_handle is None)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.stdout.strip().splitlines()[-1] == "True", result.stderr[-2000:]


def test_a_killed_worker_stops_the_other_in_one_line_and_both_resume(runs, mnist_slice, tmp_path):
    chief, other = start_workers(mnist_slice, str(tmp_path), "resumable", 2)
    out = str(tmp_path / "resumable")
    deadline = time.monotonic() + 240
    # A save writes the state file last (atomically): its .index file appears before the save is whole.
    saved = [os.path.join(out, folder, "checkpoint") for folder in ("checkpoints", "checkpoints-worker-1")]
    while not all(map(os.path.exists, saved)) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Mid-training, once each worker saved a checkpoint (a worker killed before its first save would
    # rightly make both start afresh); the killed one may be a save behind the chief.
    other.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    output = chief.communicate(timeout=120)[0]
    assert chief.returncode != 0 and time.monotonic() - killed < 90  # it fails, it does not hang
    error = output.strip().splitlines()[-1]
    assert error.startswith("components.trainer.distribute.LostWorker: a worker of the training cluster stopped (")
    assert error.endswith("start every worker again: each resumes from the newest checkpoint all of them have")
    other.communicate()

    outputs = run_workers(mnist_slice, str(tmp_path), "resumable", 2)
    steps = [re.search(r"Trainer: resuming from the checkpoint at step (\d+)", o).group(1) for o in outputs]
    assert steps[0] == steps[1] and int(steps[0]) > 0  # both from the same step
    resumed = weights(os.path.join(out, "weights-worker-0.npz"))
    for a, b, c in zip(resumed, weights(os.path.join(out, "weights-worker-1.npz")),
                       weights(runs / "single" / "resumable" / "weights-worker-0.npz")):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, atol=1e-4)  # as if never interrupted, and as one process
