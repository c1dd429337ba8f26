"""LocalDagRunner with SQLite ML Metadata under the output directory."""
from __future__ import annotations

from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.lock import exclusive
from pipeline.paths import RunPaths
from pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> None:
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        RunPaths(config.pipeline.output_dir).metadata_db
    )
    with exclusive(config.pipeline.output_dir):
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config, connection))
