"""Bad input ends the CLI with exit 2 and one line naming the problem; no traceback."""
import os

from pipeline import metadata
from tests.e2e.run_cli import assert_one_line_error, run_pipeline
from tests.idx_files import idx_bytes, synthetic, write_file, write_split
from components.example_gen.readers import LABELS_MAGIC


def test_bad_config_value(tmp_path):
    result = run_pipeline("--output-dir", str(tmp_path), "--set", "clip.threshold=0")
    assert_one_line_error(result, "clip.threshold must be > 0 (got 0.0)")


def test_unknown_runner(tmp_path):
    result = run_pipeline("--output-dir", str(tmp_path), "--runner", "airflow")
    assert_one_line_error(result, "pipeline.runner must be one of local, beam, kubeflow-v2; got 'airflow'")


def test_vertex_submission_without_credentials(tmp_path):
    """--submit-vertex can only be refused here (no cloud project): one line, and the spec is kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env["HOME"] = str(tmp_path)  # no gcloud application-default credentials
    spec = tmp_path / "spec.json"
    result = run_pipeline(
        "--runner", "kubeflow-v2", "--output", str(spec), "--data-dir", "gs://b/mnist", "--output-dir", "gs://b/root",
        "--submit-vertex", "--project", "example-project", "--region", "us-central1", env=env,
    )
    assert_one_line_error(result, "Vertex AI refused the submission (")
    assert f"the compiled spec is at {spec}" in result.stderr
    assert spec.is_file()


def test_kubeflow_v2_without_the_kfp_extra(tmp_path):
    """A plain module named kfp shadows the PipelineSpec protos, as if the extra were not installed."""
    (tmp_path / "kfp.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = run_pipeline(
        "--runner", "kubeflow-v2", "--output", str(tmp_path / "spec.json"), "--data-dir", "gs://b/mnist",
        "--output-dir", "gs://b/root", env=env,
    )
    assert_one_line_error(result, "--runner kubeflow-v2 needs kfp.pipeline_spec; install the kfp extra")
    assert not (tmp_path / "spec.json").exists()


def test_a_stray_tf_config_is_refused_before_any_component_runs(tmp_path, mnist_slice):
    """Not valid JSON, as a shell leaves it after a broken export (each other way it can be wrong: test_tf_config)."""
    env = {**os.environ, "TF_CONFIG": "{'cluster': {'worker': ['localhost:2222']}}"}
    result = run_pipeline("--output-dir", str(tmp_path / "out"), "--data-dir", mnist_slice, env=env)
    assert_one_line_error(result, "TF_CONFIG is not valid JSON (")
    assert "unset TF_CONFIG to run on this machine alone" in result.stderr
    assert not (tmp_path / "out" / "pipeline").exists()  # nothing ran


def test_missing_data_dir(tmp_path):
    result = run_pipeline("--output-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path / "nowhere"))
    assert_one_line_error(result, "no such folder; pass --data-dir DIR")


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_pipeline("--output-dir", str(blocker / "runs"), "--data-dir", str(tmp_path))
    assert_one_line_error(result, "cannot be written")


def test_bad_labels_file_stops_example_gen_and_nothing_downstream(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    images, labels = synthetic(20)
    write_split(str(data), "train", images, labels)
    write_split(str(data), "t10k", images, labels)
    write_file(str(data / "t10k-labels-idx1-ubyte.gz"), idx_bytes(labels[:15], LABELS_MAGIC))
    output_dir = tmp_path / "runs"
    result = run_pipeline("--output-dir", str(output_dir), "--data-dir", str(data))
    assert_one_line_error(result, "20 images but 15 labels; use matching files")
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    states = {e.node: e.state for e in metadata.run_executions(store, metadata.latest_run_id(store))}
    assert states["MnistExampleGen"] == "FAILED"
    assert not {"StatisticsGen", "Transform", "Trainer"} & set(states)


def test_non_finite_setting(tmp_path):
    """nan/inf are TOML numbers; before this check they reached the Trainer and crashed inside TensorFlow."""
    result = run_pipeline("--output-dir", str(tmp_path), "--set", "clip.threshold=nan")
    assert_one_line_error(result, "clip.threshold must be a finite number, got nan; give a finite value")


def test_damaged_metadata_store(tmp_path, mnist_slice):
    store = tmp_path / "metadata.sqlite"
    store.write_bytes(b"not a database, e.g. a file cut short by a full disk" * 100)
    result = run_pipeline("--output-dir", str(tmp_path), "--data-dir", mnist_slice)
    assert_one_line_error(result, f"{store} is not a readable ML Metadata database (file is not a database); "
                                  "it holds this output dir's cache and run history: move it aside")
