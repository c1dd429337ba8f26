"""create_pipeline(config): the TFX DAG. Wiring only; the work lives in components/."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

# Not `from tfx import v1`: it imports tfx.v1.extensions and with them google-cloud-aiplatform,
# seconds of every command's start-up for nothing this pipeline uses (docs/benchmarks.md).
from tfx.components import ExampleValidator, Pusher, Trainer, Transform
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration.pipeline import Pipeline
from tfx.proto.pusher_pb2 import PushDestination

from components.evaluator import accuracy
from components.evaluator.component import Evaluator
from components.evaluator.eval_config import build_eval_config
from components.example_gen.component import MnistExampleGen, input_config
from components.statistics_gen.component import StatisticsGen
from components.common.typed import to_dict
from components.validation.gate import AnomalyGate
from components.validation.health import TrainingHealthGate
from pipeline import fingerprint, sweep
from pipeline.config import PipelineConfig
from pipeline.paths import RunPaths

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_PATH = os.path.join("schemas", "mnist", "schema.pbtxt")  # relative to the project root
SCHEMA_FILE = os.path.join(PROJECT_ROOT, SCHEMA_PATH)
PREPROCESSING_FN = "components.transform.preprocessing.preprocessing_fn"
RUN_FN = "components.trainer.run_fn.run_fn"
# The project code each component runs, by entry module: its cache key follows those files and
# every project module they import (pipeline/fingerprint.py), so an edit is never answered from
# the cache. ImportSchemaGen's key follows the curated schema file's bytes the same way.
COMPONENT_CODE = {
    "MnistExampleGen": (MnistExampleGen.__module__,),
    "StatisticsGen": (StatisticsGen.__module__,),
    "AnomalyGate": (AnomalyGate.__module__,),
    "Transform": (PREPROCESSING_FN.rsplit(".", 1)[0],),
    "Trainer": (RUN_FN.rsplit(".", 1)[0],),
    "Evaluator": (Evaluator.__module__, accuracy.__name__),  # its executor; the metric TFMA loads by module name
    "TrainingHealthGate": (TrainingHealthGate.__module__,),
}


@dataclasses.dataclass(frozen=True)
class DataStages:
    """Ingest, statistics, schema and validation: once per pipeline, whatever trains after them."""

    example_gen: MnistExampleGen
    statistics_gen: StatisticsGen
    schema_gen: ImportSchemaGen
    example_validator: ExampleValidator
    anomaly_gate: AnomalyGate

    @property
    def components(self) -> list:
        return [self.example_gen, self.statistics_gen, self.schema_gen, self.example_validator, self.anomaly_gate]


def data_stages(config: PipelineConfig, schema_file: str) -> DataStages:
    data_dir = config.data.data_dir
    npz_file = os.path.basename(data_dir) if data_dir.endswith(".npz") else None
    example_gen = MnistExampleGen(
        input_base=os.path.dirname(data_dir) if npz_file else data_dir,
        input_config=input_config(npz_file),
    )
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = ImportSchemaGen(schema_file=schema_file)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])
    return DataStages(example_gen, statistics_gen, schema_gen, example_validator, anomaly_gate)


def transform(config: PipelineConfig, data: DataStages, component_id: str = "Transform") -> Transform:
    component = Transform(
        examples=data.example_gen.outputs["examples"],
        schema=data.schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=config.transform_custom_config(),
        materialize=False,  # the Trainer applies the transform graph itself (components/trainer/data.py)
        disable_statistics=True,  # StatisticsGen already covers the raw data
    ).with_id(component_id)  # before the edge below, which records the id
    component.add_upstream_node(data.anomaly_gate)
    return component


def train_and_evaluate(
    config: PipelineConfig, data: DataStages, transformed: Transform, trainer_id: str = "Trainer",
    evaluator_id: str = "Evaluator",
) -> tuple[Trainer, Evaluator]:
    trainer_class, cluster = (vertex_trainer(config) if config.trainer.workers > 1 else (Trainer, {}))
    trainer = trainer_class(
        run_fn=RUN_FN,
        examples=data.example_gen.outputs["examples"],
        transform_graph=transformed.outputs["transform_graph"],
        schema=data.schema_gen.outputs["schema"],
        custom_config={**config.trainer_custom_config(trainer_id), **cluster},
    ).with_id(trainer_id)
    evaluator = Evaluator(
        examples=data.example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        schema=data.schema_gen.outputs["schema"],
        eval_config=build_eval_config(config.evaluator.accuracy_threshold),
    ).with_id(evaluator_id)
    return trainer, evaluator


def vertex_trainer(config: PipelineConfig) -> tuple[type, dict]:
    """TFX's Vertex AI Trainer, and the custom_config that makes its step a Vertex AI Training job:
    a pool of one chief and one of ``workers - 1`` workers, each running this project's image. Vertex
    sets TF_CONFIG on each replica; run_fn reads it (components/trainer/distribute.py)."""
    # google-cloud-aiplatform: seconds of import, paid only by a pipeline that trains on a cluster.
    from tfx.extensions.google_cloud_ai_platform import constants  # noqa: PLC0415
    from tfx.extensions.google_cloud_ai_platform.trainer import component, executor  # noqa: PLC0415

    def pool(replicas: int) -> dict:
        return {"machine_spec": {"machine_type": config.trainer.machine_type}, "replica_count": replicas,
                "container_spec": {"image_uri": config.kubeflow.image}}

    return component.Trainer, {
        constants.ENABLE_VERTEX_KEY: True,
        constants.VERTEX_REGION_KEY: config.kubeflow.region,
        executor.TRAINING_ARGS_KEY: {
            "project": config.kubeflow.project,
            "job_spec": {"worker_pool_specs": [pool(1), pool(config.trainer.workers - 1)]},
        },
    }


def single_training(config: PipelineConfig, data: DataStages) -> list:
    """Transform, Trainer, Evaluator, the health gate and the Pusher of the serving model."""
    transformed = transform(config, data)
    trainer, evaluator = train_and_evaluate(config, data, transformed)
    health_gate = TrainingHealthGate(
        evaluator_blessing=evaluator.outputs["blessing"],
        model_run=trainer.outputs["model_run"],
        health=json.dumps(to_dict(config.health)),
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=health_gate.outputs["final_blessing"],
        push_destination=PushDestination(
            filesystem=PushDestination.Filesystem(base_directory=RunPaths.of(config.pipeline).serving_model)
        ),
    )
    return [transformed, trainer, evaluator, health_gate, pusher]


def sweep_training(points: list[sweep.Point], data: DataStages) -> list:
    """One Transform per distinct scaling, then a Trainer and an Evaluator per point; nothing is pushed
    (the report names the best point; its model is an artifact like any other)."""
    first_use = {}  # scaling -> the config of the first point with it
    for point in points:
        first_use.setdefault(point.config.transform, point.config)
    transforms = {  # named by the divisor when there are several
        scaling: transform(config, data, f"Transform.div{scaling.divisor:g}" if len(first_use) > 1 else "Transform")
        for scaling, config in first_use.items()
    }
    components = list(transforms.values())
    for point in points:
        components += train_and_evaluate(
            point.config, data, transforms[point.config.transform], point.trainer_id, point.evaluator_id,
        )
    return components


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: Optional[object] = None,
    schema_file: str = SCHEMA_FILE,
) -> Pipeline:
    """The DAG for ``config`` (a sweep's when its ``[sweep]`` names strategies); ``schema_file``
    is where the curated schema is found when the components run (inside the image, for compiled runners)."""
    data = data_stages(config, schema_file)
    points = sweep.points(config)
    components = data.components + (sweep_training(points, data) if points else single_training(config, data))
    for component in components:
        entry = component.id.split(".")[0]  # a sweep's Trainer.<point> runs the Trainer's code
        if entry in COMPONENT_CODE:
            fingerprint.attach(component, fingerprint.code_fingerprint(COMPONENT_CODE[entry]))
    fingerprint.attach(data.schema_gen, fingerprint.fingerprint_files([SCHEMA_PATH]))
    paths = RunPaths.of(config.pipeline)
    return Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=paths.pipeline_root,
        components=components,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.pipeline.beam_args),
    )
