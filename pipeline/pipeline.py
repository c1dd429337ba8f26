"""create_pipeline(config): the TFX DAG. Wiring only; the work lives in components/."""
from __future__ import annotations

import json
import os
from typing import Optional

# Not `from tfx import v1`: it imports tfx.v1.extensions and with them google-cloud-aiplatform,
# seconds of every command's start-up for nothing this pipeline uses (docs/benchmarks.md).
from tfx.components import Evaluator, ExampleValidator, Pusher, StatisticsGen, Trainer, Transform
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration.pipeline import Pipeline
from tfx.proto.pusher_pb2 import PushDestination

from components.evaluator import accuracy
from components.evaluator.eval_config import build_eval_config
from components.example_gen.component import MnistExampleGen, input_config
from components.common.typed import to_dict
from components.validation.gate import AnomalyGate
from components.validation.health import TrainingHealthGate
from pipeline import fingerprint
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
    "AnomalyGate": (AnomalyGate.__module__,),
    "Transform": (PREPROCESSING_FN.rsplit(".", 1)[0],),
    "Trainer": (RUN_FN.rsplit(".", 1)[0],),
    "Evaluator": (accuracy.__name__,),  # the metric TFMA loads by module name
    "TrainingHealthGate": (TrainingHealthGate.__module__,),
}


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: Optional[object] = None,
    schema_file: str = SCHEMA_FILE,
) -> Pipeline:
    """The DAG for ``config``; ``schema_file`` is where the curated schema is
    found when the components run (inside the image, for compiled runners)."""
    paths = RunPaths.of(config.pipeline)
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
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=config.transform_custom_config(),
        materialize=False,  # the Trainer applies the transform graph itself (components/trainer/data.py)
        disable_statistics=True,  # StatisticsGen already covers the raw data
    )
    transform.add_upstream_node(anomaly_gate)
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        custom_config=config.trainer_custom_config(),
    )
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        schema=schema_gen.outputs["schema"],
        eval_config=build_eval_config(config.evaluator.accuracy_threshold),
    )
    health_gate = TrainingHealthGate(
        evaluator_blessing=evaluator.outputs["blessing"],
        model_run=trainer.outputs["model_run"],
        health=json.dumps(to_dict(config.health)),
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=health_gate.outputs["final_blessing"],
        push_destination=PushDestination(
            filesystem=PushDestination.Filesystem(base_directory=paths.serving_model)
        ),
    )
    components = [
        example_gen, statistics_gen, schema_gen, example_validator, anomaly_gate,
        transform, trainer, evaluator, health_gate, pusher,
    ]
    for component in components:
        if component.id in COMPONENT_CODE:
            fingerprint.attach(component, fingerprint.code_fingerprint(COMPONENT_CODE[component.id]))
    fingerprint.attach(schema_gen, fingerprint.fingerprint_files([SCHEMA_PATH]))
    return Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=paths.pipeline_root,
        components=components,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.pipeline.beam_args),
    )
