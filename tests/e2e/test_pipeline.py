"""The real pipeline (all TFX components, Beam, TFMA) on a slice of real MNIST."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.example_gen.readers import read_idx_split
from components.evaluator.eval_config import ACCURACY_METRIC
from components.example_gen.records import serialize_examples
from pipeline import metadata
from pipeline.tools.events import read_run, scalar_curve
from tests.e2e.reference import read_examples, reference_executions
from tests.e2e.run_cli import (
    COMMON, NODES, REPO, read_first_summary, read_summary, run_pipeline, seeded_output_dir, states as _states,
)


def test_first_run_executes_every_component_and_blesses(first_run):
    output_dir, result = first_run
    summary = read_first_summary(output_dir)
    assert _states(summary) == {node: "COMPLETE" for node in NODES}
    assert summary["eval_accuracy"] >= 0.9
    # TFMA's accuracy (our confusion-matrix metric, through the serving signature) equals the
    # Trainer's own evaluation of the same model on the same eval split.
    assert summary["eval_accuracy"] == pytest.approx(summary["gradient_report"]["eval_accuracy"], abs=1e-6)
    assert summary["blessed"] is True and summary["accuracy_blessed"] is True
    assert summary["health_problems"] is None
    assert summary["gradient_report"]["steps"] == 3 * 32  # 3 epochs of ceil(4000 / 128) steps
    assert all(info["wall_seconds"] > 0 for info in summary["components"].values())
    assert f"eval accuracy: {summary['eval_accuracy']:.4f}" in result.stdout
    assert "--logdir " + summary["tensorboard_logdir"] in result.stdout


def _component_lines(stdout: str) -> list:
    """(node, state, seconds) of each progress line, in the order printed."""
    lines = [line.split() for line in stdout.splitlines() if line.startswith("  ") and line.rstrip().endswith(" s")]
    return [(parts[0], parts[1], float(parts[2])) for parts in lines if parts[0] in NODES]


def test_the_terminal_shows_settings_components_and_epochs_as_they_happen(first_run, mnist_slice):
    output_dir, result = first_run
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"clipflow: local run of {mnist_slice} into {output_dir}",
        "settings other than the defaults: telemetry.histogram_every_n_steps=20, evaluator.accuracy_threshold=0.9",
    ]
    assert "\x1b" not in result.stdout  # plain lines: no control codes in a log or CI
    summary = read_first_summary(output_dir)
    printed = _component_lines(result.stdout)
    assert [node for node, _, _ in printed] == list(summary["components"])  # each once, in the order they ran
    for node, state, seconds in printed:
        assert state == summary["components"][node]["state"] == "COMPLETE"
        assert seconds == pytest.approx(summary["components"][node]["wall_seconds"], abs=0.006)
    epochs = [i for i, line in enumerate(lines) if line.startswith("Trainer: epoch ")]
    assert [lines[i].split(":")[1] for i in epochs] == [" epoch 1/3", " epoch 2/3", " epoch 3/3"]
    assert lines[epochs[-1]].startswith("Trainer: epoch 3/3: step 96, loss ")
    assert f"eval accuracy {summary['gradient_report']['eval_accuracy']:.4f}" in lines[epochs[-1]]
    trainer_done = next(i for i, line in enumerate(lines) if line.split()[:2] == ["Trainer", "COMPLETE"])
    transform_done = next(i for i, line in enumerate(lines) if line.split()[:2] == ["Transform", "COMPLETE"])
    assert transform_done < epochs[0] < epochs[-1] < trainer_done  # printed while the pipeline ran


def test_quiet_prints_only_the_result(first_run, mnist_slice):
    output_dir, _ = first_run
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    assert not _component_lines(result.stdout) and "settings other than" not in result.stdout
    assert result.stdout.lstrip().startswith("clipflow run ") and "eval accuracy: " in result.stdout
    log = max(glob.glob(os.path.join(output_dir, "logs", "*.log")), key=os.path.getmtime)
    with open(log) as f:
        assert "settings other than the defaults" in f.read()  # the progress went to the log


def test_the_default_run_clips(first_run):
    """The default global-norm threshold binds for the default model, and nothing passes it."""
    summary = read_first_summary(first_run[0])
    threshold = summary["config"]["clip"]["threshold"]
    assert summary["config"]["clip"]["strategy"] == "global_norm" and threshold == 0.5
    assert summary["gradient_report"]["clipped_fraction"] > 0
    events = read_run(summary["tensorboard_logdir"])
    _, pre = scalar_curve(events["grad_norm/pre_clip"])
    _, post = scalar_curve(events["grad_norm/post_clip"])
    clipped = pre > threshold
    assert clipped.any() and post.max() <= threshold * (1 + 1e-5)
    assert summary["gradient_report"]["clipped_fraction"] == pytest.approx(clipped.mean())
    np.testing.assert_allclose(post[clipped], threshold, rtol=1e-5)  # clipped steps sit at the threshold


def test_evaluation_has_accuracy_per_label_slice(first_run, mnist_slice):
    """TFMA's per-class slices: one per digit, sized as the eval split's labels, consistent with the overall accuracy."""
    evaluation = reference_executions(first_run[0])["Evaluator"].outputs["evaluation"][0].uri
    slices = {}
    for metrics in tfma.load_metrics(evaluation):
        values = {e.key.name: e.value.double_value.value for e in metrics.metric_keys_and_values}
        key = tuple((k.column, k.int64_value) for k in metrics.slice_key.single_slice_keys)
        slices[key] = (values["example_count"], values[ACCURACY_METRIC])
    _, labels = read_idx_split(
        os.path.join(mnist_slice, "t10k-images-idx3-ubyte.gz"), os.path.join(mnist_slice, "t10k-labels-idx1-ubyte.gz")
    )
    counts = np.bincount(labels, minlength=10)
    assert set(slices) == {()} | {(("label", digit),) for digit in range(10)}
    assert [slices[(("label", digit),)][0] for digit in range(10)] == counts.tolist()
    per_label = np.array([slices[(("label", digit),)][1] for digit in range(10)])
    assert 0.5 < per_label.min() and len(set(per_label.round(6))) > 1  # real per-class values, not one copied number
    assert np.average(per_label, weights=counts) == pytest.approx(slices[()][1], abs=1e-6)


def test_examples_keep_the_official_split_sizes(first_run):
    output_dir, _ = first_run
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    executions = {e.node: e for e in metadata.run_executions(store, metadata.latest_run_id(store))}
    examples = read_examples(executions["MnistExampleGen"].outputs["examples"][0].uri)
    assert {split: len(records) for split, records in examples.items()} == {"train": 4000, "eval": 1000}


def test_pushed_model_serves_raw_examples(first_run, mnist_slice):
    output_dir, _ = first_run
    summary = read_first_summary(output_dir)
    assert summary["serving_model"].startswith(os.path.join(output_dir, "serving_model"))
    images, labels = read_idx_split(
        os.path.join(mnist_slice, "t10k-images-idx3-ubyte.gz"), os.path.join(mnist_slice, "t10k-labels-idx1-ubyte.gz")
    )
    records = list(serialize_examples(images[:200], np.zeros(200, np.uint8)))  # serving ignores the label
    serve = tf.saved_model.load(summary["serving_model"]).signatures["serving_default"]
    probabilities = serve(examples=tf.constant(records))["probabilities"].numpy()
    assert probabilities.shape == (200, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities.argmax(axis=1) == labels[:200]).mean() >= 0.85


def test_rerun_uses_the_cache(first_run, mnist_slice):
    output_dir, _ = first_run  # in the first run's own dir: a copy elsewhere has another checkpoint root
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    states = _states(read_summary(output_dir))
    assert states == {node: "CACHED" for node in NODES}
    assert {(node, state) for node, state, _ in _component_lines(result.stdout)} == {(n, "CACHED") for n in NODES}


@pytest.fixture(scope="module")
def trainer_change(first_run, mnist_slice, tmp_path_factory):
    output_dir = seeded_output_dir(first_run, tmp_path_factory.mktemp("change") / "runs")
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON, "--set", "trainer.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


def test_trainer_change_reruns_only_trainer_and_after(trainer_change):
    summary = read_summary(trainer_change)
    states = _states(summary)
    upstream = ["ImportSchemaGen", "MnistExampleGen", "StatisticsGen", "ExampleValidator", "AnomalyGate", "Transform"]
    assert {n: states[n] for n in upstream} == {n: "CACHED" for n in upstream}
    downstream = ("Trainer", "Evaluator", "TrainingHealthGate", "Pusher")
    assert {n: states[n] for n in downstream} == dict.fromkeys(downstream, "COMPLETE")
    assert summary["gradient_report"]["steps"] == 2 * 32


def test_tensorboard_lists_both_trainer_runs_side_by_side(trainer_change):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.tensorboard", "--output-dir", trainer_change, "--print-only"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epochs=3: ") and lines[1].startswith("epochs=2: ")
    assert "--logdir_spec" in lines[2] and "--host 127.0.0.1" in lines[2]


def test_unhealthy_training_is_not_pushed(first_run, mnist_slice, tmp_path):
    output_dir = seeded_output_dir(first_run, tmp_path / "runs")
    result = run_pipeline(
        "--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON,
        "--set", "clip.threshold=0.05", "--set", "health.enabled=true", "--set", "health.max_clipped_fraction=0.5",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(output_dir)
    assert summary["accuracy_blessed"] is True  # accurate enough (Adam barely minds the clip)...
    assert summary["blessed"] is False  # ...but nearly every step was clipped
    assert "of steps clipped (allowed 50.0%)" in summary["health_problems"]
    assert summary["serving_model"] is None
    assert "unhealthy training" in result.stdout
