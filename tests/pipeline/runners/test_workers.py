"""trainer.workers: the Trainer compiled as a Vertex AI Training job with a chief and worker pools."""
import pytest

from components.common.errors import ConfigError
from pipeline.config import load_config
from tests.kfp_spec import task_custom_config

VERTEX = ['data.data_dir="gs://b/mnist"', "pipeline.output_dir='gs://b/runs'", "pipeline.runner='kubeflow-v2'",
          "kubeflow.project='my-project'", "kubeflow.region='europe-west4'", "kubeflow.image='eu.gcr.io/p/clipflow:1'"]


def trainer_task(*settings):
    from pipeline.runners import kubeflow_v2  # noqa: PLC0415  (the kfp extra; slow to import)

    spec = kubeflow_v2.compile_spec(load_config(None, [*VERTEX, *settings]))
    custom = task_custom_config(spec, "Trainer")
    executor = spec["pipelineSpec"]["deploymentSpec"]["executors"][
        spec["pipelineSpec"]["components"]["Trainer"]["executorLabel"]]
    args = executor["container"]["args"]
    return custom, args[args.index("--executor_class_path") + 1]


@pytest.mark.slow  # compiles the whole Vertex AI spec
def test_workers_compile_a_chief_pool_and_a_worker_pool():
    custom, executor = trainer_task("trainer.workers=3", "trainer.machine_type='n1-highmem-8'")
    assert executor == "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
    assert custom["ai_platform_enable_vertex"] is True and custom["ai_platform_vertex_region"] == "europe-west4"
    job = custom["ai_platform_training_args"]
    assert job["project"] == "my-project"
    pools = job["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]  # the chief, then the other workers
    for pool in pools:
        assert pool["machine_spec"] == {"machine_type": "n1-highmem-8"}
        assert pool["container_spec"] == {"image_uri": "eu.gcr.io/p/clipflow:1"}
    assert custom["trainer"]["workers"] == 3 and custom["clip"]["strategy"] == "global_norm"  # the run_fn's settings


def test_one_worker_changes_nothing():
    custom, executor = trainer_task()
    assert executor == "tfx.components.trainer.executor.GenericExecutor"
    assert not [key for key in custom if key.startswith("ai_platform")]


@pytest.mark.parametrize("settings,message", [
    (["trainer.workers=2"], "trainer.workers = 2 runs the Trainer on Vertex AI Training worker pools: add --runner kubeflow-v2"),
    (["trainer.workers=2", "pipeline.runner='kubeflow-v2'"], "trainer.workers = 2 needs --project and --region"),
    (["trainer.workers=0"], "trainer.workers must be >= 1"),
])
def test_a_cluster_that_cannot_run_is_one_line(settings, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, settings)
    assert message in str(err.value) and "\n" not in str(err.value)
