"""LocalDagRunner with SQLite ML Metadata under the output directory."""
from __future__ import annotations

from typing import Optional

from tfx.orchestration import metadata, tfx_runner
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from pipeline.config import PipelineConfig
from pipeline.lock import exclusive
from pipeline.paths import RunPaths
from pipeline.pipeline import create_pipeline


def run(config: PipelineConfig, dag_runner: Optional[tfx_runner.TfxRunner] = None) -> None:
    """Runs the pipeline here, one run at a time per output directory.

    ``dag_runner`` defaults to the LocalDagRunner; the beam runner passes its own."""
    connection = metadata.sqlite_metadata_connection_config(
        RunPaths.of(config.pipeline).metadata_db
    )
    with exclusive(config.pipeline.local_dir):
        (dag_runner or LocalDagRunner()).run(create_pipeline(config, connection))
