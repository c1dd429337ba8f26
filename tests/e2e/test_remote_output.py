"""``--output-dir`` on a file system that is not a local folder, with ``--metadata-dir``
local: TensorFlow's in-memory ``ram://`` stands in for gs:// (no cloud here)."""
import json
import os
import subprocess
import sys

from pipeline.summary import overall_accuracy
from tests.e2e.ram_run import digest
from tests.e2e.reference import read_examples, reference_executions
from tests.e2e.run_cli import COMMON, NODES, REPO, states

OUTPUT_DIR = "ram://clipflow-e2e/runs"


def test_remote_output_dir_gets_every_artifact_and_matches_the_local_run(first_run, mnist_slice, tmp_path):
    metadata_dir, manifest = tmp_path / "metadata", tmp_path / "manifest.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.ram_run", str(manifest), "--", "--data-dir", mnist_slice,
         "--output-dir", OUTPUT_DIR, "--metadata-dir", str(metadata_dir), *COMMON,
         "--set", "trainer.checkpoint_every_n_steps=40"],  # checkpoints saved to ram:// (and removed at the end)
        cwd=tmp_path,  # a path mistaken for a local one would appear here as ./ram:/...
        env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(manifest) as f:
        written = json.load(f)
    summary = written["summary"]
    assert states(summary) == {node: "COMPLETE" for node in NODES}
    assert summary["blessed"] is True
    for key in ("model", "tensorboard_logdir", "serving_model"):
        assert summary[key].startswith(OUTPUT_DIR + "/"), (key, summary[key])

    # Artifacts went to ram://; the local folders hold run state only.
    assert not os.path.exists(tmp_path / "ram:")
    assert sorted(os.listdir(metadata_dir)) == [".clipflow.lock", "logs", "metadata.sqlite", "summary.json"]
    files = written["files"]
    for part in ("/MnistExampleGen/examples/", "/StatisticsGen/statistics/", "/Transform/transform_graph/",
                 "/Trainer/model/", "/Trainer/model_run/", "/Evaluator/evaluation/", "/serving_model/"):
        assert any(part in path for path in files), part
    assert any(path.endswith("saved_model.pb") and "/serving_model/" in path for path in files)
    assert any(".tfevents." in path for path in files)  # TensorBoard's telemetry

    # The same data, so the same model as the local run on the same slice (the Trainer puts the
    # records, which ExampleGen writes in a new order each run, into a canonical order).
    reference = reference_executions(first_run[0])
    local_examples = read_examples(reference["MnistExampleGen"].outputs["examples"][0].uri)
    assert written["examples_sha256"] == {split: digest(records) for split, records in local_examples.items()}
    assert abs(summary["eval_accuracy"] - overall_accuracy(reference["Evaluator"].outputs["evaluation"][0].uri)) <= 1e-6
    # The pushed model, read back from ram://, scores on the eval split exactly what TFMA reported.
    assert abs(written["serving_accuracy"] - summary["eval_accuracy"]) <= 1e-6
