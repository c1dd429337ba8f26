"""Every runner serves the one pipeline definition: the KFP v2 spec carries the
local run's settings; the Beam DAG runner and DirectRunner multi-processing
produce what the local run produced."""
import json
import os

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.fingerprint import code_fingerprint
from pipeline.pipeline import COMPONENT_CODE, SCHEMA_FILE, SCHEMA_PATH, create_pipeline
from pipeline.prepare import build_config
from pipeline.summary import overall_accuracy
from pipeline.runners.kubeflow_v2 import IMAGE_PROJECT_ROOT
from tests.e2e.reference import first_run_properties, read_examples, reference_executions
from tests.e2e.run_cli import COMMON, NODES, REPO, read_summary, run_pipeline, states


def mlmd_value(value):
    return value.string_value if value.WhichOneof("value") == "string_value" else value.int_value


def spec_value(parameter):
    constant = parameter.runtime_value.constant_value
    return constant.string_value if constant.WhichOneof("value") == "string_value" else constant.int_value


@pytest.fixture(scope="module")
def compiled(first_run, mnist_slice, tmp_path_factory):
    output_dir, _ = first_run
    spec_file = str(tmp_path_factory.mktemp("kfp") / "clipflow.json")
    result = run_pipeline(
        "--runner", "kubeflow-v2", "--output", spec_file, "--image", "gcr.io/example/clipflow:test",
        "--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"compiled KFP v2 PipelineSpec: {spec_file}" in result.stdout
    code = code_fingerprint([module for modules in COMPONENT_CODE.values() for module in modules])
    assert f"e.g. gcr.io/example/clipflow:{code[:12]}, to tell" in result.stdout
    with open(spec_file) as f:
        job = json_format.ParseDict(json.load(f), pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec), pipeline_spec_pb2.PipelineSpec())
    return job, spec


def test_kubeflow_v2_spec_has_every_component_in_dependency_order(compiled, first_run, mnist_slice):
    job, spec = compiled
    tasks = spec.root.dag.tasks
    assert set(tasks) == set(NODES)
    config = build_config(None, overrides=COMMON[1::2], flags={"data.data_dir": mnist_slice, "pipeline.output_dir": first_run[0]})
    local_dag = {c.id: {u.id for u in c.upstream_nodes} for c in create_pipeline(config).components}
    assert {name: set(task.dependent_tasks) for name, task in tasks.items()} == local_dag
    order = list(reference_executions(first_run[0]))  # in the order they started
    for name, task in tasks.items():  # the local run ran each component after those it depends on
        assert all(order.index(dep) < order.index(name) for dep in task.dependent_tasks)
    assert job.runtime_config.gcs_output_directory == os.path.join(first_run[0], "pipeline")
    for executor in spec.deployment_spec.fields["executors"].struct_value.fields.values():
        container = executor.struct_value.fields["container"].struct_value
        assert container.fields["image"].string_value == "gcr.io/example/clipflow:test"


def test_kubeflow_v2_parameters_equal_the_local_runs_settings(compiled, first_run):
    _, spec = compiled
    properties = first_run_properties(first_run[0])
    compared = 0
    for name, task in spec.root.dag.tasks.items():
        local = properties[name]
        for key, parameter in task.inputs.parameters.items():
            if key == "schema_file":  # read inside the image, where the Dockerfile puts the project
                assert spec_value(parameter) == os.path.join(IMAGE_PROJECT_ROOT, SCHEMA_PATH)
                assert mlmd_value(local[key]) == SCHEMA_FILE
                continue
            assert spec_value(parameter) == mlmd_value(local[key]), (name, key)
            compared += 1
    for name, modules in COMPONENT_CODE.items():  # the code each component runs, recorded in the spec
        assert spec_value(spec.root.dag.tasks[name].inputs.parameters["code_fingerprint"]) == code_fingerprint(modules)
    trainer = spec.root.dag.tasks["Trainer"].inputs.parameters["custom_config"]
    assert json.loads(spec_value(trainer))["telemetry"]["histogram_every_n_steps"] == 20  # --set reached the spec
    assert compared >= 20


def test_dockerfile_puts_the_project_where_the_spec_looks():
    with open(os.path.join(REPO, "Dockerfile")) as f:
        lines = [line.split() for line in f if line.strip() and not line.startswith("#")]
    assert ["WORKDIR", IMAGE_PROJECT_ROOT] in lines
    assert os.path.isfile(os.path.join(REPO, SCHEMA_PATH))


def statistics(executions: dict) -> dict:
    """Every number in the StatisticsGen's statistics of each split, by its path in the proto."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            flat[prefix] = value

    artifact = executions["StatisticsGen"].outputs["statistics"][0]
    for split in ("train", "eval"):
        with open(os.path.join(artifact.uri, f"Split-{split}", "FeatureStats.pb"), "rb") as f:
            stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
        walk(split, json_format.MessageToDict(stats))
    return flat


def output_types(executions: dict) -> dict:
    return {node: {key: [a.type for a in artifacts] for key, artifacts in e.outputs.items()} for node, e in executions.items()}


@pytest.mark.parametrize(
    "runner_args",
    [
        ("--runner", "beam"),
        ("--beam-arg=--direct_running_mode=multi_processing", "--beam-arg=--direct_num_workers=2"),
    ],
    ids=["beam-dag-runner", "direct-multi-processing"],
)
def test_other_runners_produce_the_local_runs_artifacts(runner_args, first_run, mnist_slice, tmp_path):
    output_dir = str(tmp_path / "runs")
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON, *runner_args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""  # no warnings from Beam's worker processes either
    summary = read_summary(output_dir)
    assert states(summary) == {node: "COMPLETE" for node in NODES}
    ours, reference = reference_executions(output_dir), reference_executions(first_run[0])  # ours: its only run
    assert output_types(ours) == output_types(reference)
    assert output_types(ours)["MnistExampleGen"]["examples"] == ["Examples"]
    examples_uri = lambda executions: executions["MnistExampleGen"].outputs["examples"][0].uri  # noqa: E731
    assert read_examples(examples_uri(ours)) == read_examples(examples_uri(reference))
    # The reference's statistics were computed in process (components/statistics_gen); with Beam
    # args (multi-processing), TFX's own executor computed these on Beam: the same, to the rounding of sums.
    ours_stats, reference_stats = statistics(ours), statistics(reference)
    assert len(ours_stats) > 300 and ours_stats.keys() == reference_stats.keys()
    assert ours_stats == {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in reference_stats.items()}
    reference_accuracy = overall_accuracy(reference["Evaluator"].outputs["evaluation"][0].uri)
    assert summary["blessed"] is True and summary["serving_model"]
    assert abs(summary["eval_accuracy"] - reference_accuracy) <= 0.01
