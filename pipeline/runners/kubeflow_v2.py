"""Compiles the pipeline into a KFP v2 / Vertex AI PipelineSpec (JSON), and
optionally submits it to Vertex AI Pipelines.

Settings are compile-time constants in the spec (the config travels through
the components' ``custom_config`` as in a local run): TFX 1.16's KFP v2
compiler mishandles RuntimeParameter (tensorflow/tfx issue 7733).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from components.common.errors import ConfigError, first_line
from pipeline.config import PipelineConfig
from pipeline import fingerprint
from pipeline.pipeline import COMPONENT_CODE, SCHEMA_PATH, create_pipeline

IMAGE_PROJECT_ROOT = "/clipflow"  # where the Dockerfile puts this project inside the image
INSTALL_HINT = "install the kfp extra: .venv/bin/pip install -c constraints.txt -e '.[kfp]'"


def compile_spec(config: PipelineConfig) -> Dict[str, Any]:
    """The PipelineJob (PipelineSpec + runtime config) as the JSON dict Vertex AI and KFP read."""
    try:
        from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # noqa: PLC0415
    except ImportError as err:
        raise ConfigError(f"--runner kubeflow-v2 needs {err.name}; {INSTALL_HINT}") from None
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=config.kubeflow.image, display_name=config.pipeline.name
        )
    )
    pipeline = create_pipeline(config, schema_file=os.path.join(IMAGE_PROJECT_ROOT, SCHEMA_PATH))
    return runner.run(pipeline, write_out=False)


def write_spec(spec: Dict[str, Any], path: str) -> None:
    """Whole or not at all: a spec is written beside its final name, then renamed."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(spec, f, indent=2, sort_keys=True)
        os.replace(path + ".tmp", path)
    except OSError as err:
        raise ConfigError(f"kubeflow.output_file {path} cannot be written ({err.strerror}); choose another --output") from None


def submit_to_vertex(config: PipelineConfig, spec_file: str) -> str:
    """Submits through google-cloud-aiplatform's PipelineJob; returns the job's resource name.

    Not exercised against a cloud project here; it is the documented SDK call
    and nothing more. A refusal (no credentials, no permission) is one line."""
    from google.api_core.exceptions import GoogleAPIError  # noqa: PLC0415
    from google.auth.exceptions import GoogleAuthError  # noqa: PLC0415
    from google.cloud import aiplatform  # noqa: PLC0415

    settings = config.kubeflow
    try:
        aiplatform.init(project=settings.project, location=settings.region)
        job = aiplatform.PipelineJob(
            display_name=config.pipeline.name,
            template_path=spec_file,
            pipeline_root=config.pipeline.output_dir,
            enable_caching=config.pipeline.enable_cache,
        )
        job.submit(service_account=settings.service_account or None)
    except (GoogleAuthError, GoogleAPIError) as err:
        raise ConfigError(
            f"Vertex AI refused the submission ({first_line(err)}); the compiled spec is at {spec_file}: "
            "check the credentials (gcloud auth application-default login), --project and --region"
        ) from None
    return job.resource_name


def _repository(image: str) -> str:
    """``gcr.io/p/clipflow:latest`` -> ``gcr.io/p/clipflow`` (a registry's ``host:port/`` is not a tag)."""
    head, _, last = image.rpartition("/")
    return f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]


def run(config: PipelineConfig) -> str:
    spec_file = config.kubeflow.output_file
    write_spec(compile_spec(config), spec_file)
    code = fingerprint.code_fingerprint([module for modules in COMPONENT_CODE.values() for module in modules])
    lines = [
        f"compiled KFP v2 PipelineSpec: {spec_file}",
        f"  image: {config.kubeflow.image} (build it from the Dockerfile and push it where the cluster pulls from)",
        f"  code: {code[:12]} (each component's code_fingerprint is in the spec; tag the image built from this "
        f"checkout with it, e.g. {_repository(config.kubeflow.image)}:{code[:12]}, to tell which image holds the spec's code)",
        f"  pipeline root: {config.pipeline.output_dir}",
        f"  data: {config.data.data_dir}",
    ]
    if config.kubeflow.submit_vertex:
        lines.append(f"submitted to Vertex AI Pipelines: {submit_to_vertex(config, spec_file)}")
    return "\n".join(lines)
