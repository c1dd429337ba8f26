"""The Airflow DAG (dags/clipflow.py) run with ``airflow dags test`` in its own
environment (.venv-airflow) on the slice: every task succeeds and it produces
what the local run produced."""
import os
import subprocess

import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from pipeline import metadata
from pipeline.summary import overall_accuracy
from tests.e2e.reference import read_examples, reference_executions
from tests.e2e.run_cli import NODES, REPO

AIRFLOW = os.path.join(REPO, ".venv-airflow", "bin", "airflow")


@pytest.fixture(scope="module")
def airflow_cli() -> str:
    if not os.path.exists(AIRFLOW):
        if os.environ.get("CI"):
            pytest.fail("CI needs the Airflow environment: `make test` builds .venv-airflow")
        pytest.skip("no .venv-airflow (make airflow)")
    return AIRFLOW


def airflow(cli: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=900)


def airflow_env(tmp_path, mnist_slice: str, toml: str) -> dict:
    """Airflow's own home and database in tmp_path, the DAG folder, and the config file the DAG reads."""
    config = tmp_path / "clipflow.toml"
    config.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__DAGS_FOLDER=os.path.join(REPO, "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False", CLIPFLOW_CONFIG=str(config), MNIST_DATA_DIR=mnist_slice,
    )
    return env


def test_airflow_dag_runs_the_pipeline(airflow_cli, mnist_slice, first_run, tmp_path):
    output_dir = tmp_path / "runs"
    env = airflow_env(tmp_path, mnist_slice, f'[pipeline]\noutput_dir = "{output_dir}"\n[evaluator]\n'
                      "accuracy_threshold = 0.9\n[telemetry]\nhistogram_every_n_steps = 20\n")
    assert airflow(airflow_cli, env, "db", "init").returncode == 0
    listed = airflow(airflow_cli, env, "tasks", "list", "clipflow")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert sorted(listed.stdout.split()) == sorted(NODES)
    result = airflow(airflow_cli, env, "dags", "test", "clipflow", "2026-01-02")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    store = metadata.open_store(str(output_dir / "metadata.sqlite"))
    executions = store.get_executions()
    assert len(executions) == len(NODES)
    assert {e.last_known_state for e in executions} == {metadata_store_pb2.Execution.COMPLETE}
    # TFX's legacy launchers (Airflow's) record runs with contexts of their own, so artifacts are found by type.
    (examples,) = store.get_artifacts_by_type("Examples")
    (evaluation,) = store.get_artifacts_by_type("ModelEvaluation")
    (pushed,) = store.get_artifacts_by_type("PushedModel")
    final_blessing = next(a for a in store.get_artifacts_by_type("ModelBlessing") if a.name.startswith("final_blessing:"))
    assert metadata.custom_int(final_blessing, "blessed") == 1
    assert metadata.custom_int(pushed, "pushed") == 1
    assert tf.saved_model.contains_saved_model(metadata.custom_str(pushed, "pushed_destination"))

    reference = reference_executions(first_run[0])
    assert read_examples(examples.uri) == read_examples(reference["MnistExampleGen"].outputs["examples"][0].uri)
    reference_accuracy = overall_accuracy(reference["Evaluator"].outputs["evaluation"][0].uri)
    assert abs(overall_accuracy(evaluation.uri) - reference_accuracy) <= 0.01


def test_a_sweep_is_an_airflow_dag_with_a_trainer_and_evaluator_task_per_point(airflow_cli, mnist_slice, tmp_path):
    env = airflow_env(tmp_path, mnist_slice, f'[pipeline]\noutput_dir = "{tmp_path / "runs"}"\n'
                      '[sweep]\nstrategies = ["none", "global_norm"]\nthresholds = [0.5, 2]\n')
    assert airflow(airflow_cli, env, "db", "init").returncode == 0
    listed = airflow(airflow_cli, env, "tasks", "list", "clipflow")
    assert listed.returncode == 0, listed.stderr[-3000:]
    points = ["none", "global_norm-0.5", "global_norm-2"]
    assert sorted(listed.stdout.split()) == sorted(
        [*NODES[:6], *(f"Trainer.{p}" for p in points), *(f"Evaluator.{p}" for p in points)])
