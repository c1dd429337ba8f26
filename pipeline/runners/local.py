"""LocalDagRunner with SQLite ML Metadata under the output directory."""
from __future__ import annotations

from typing import Optional

from tfx.orchestration import metadata, tfx_runner
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from pipeline.config import PipelineConfig
from pipeline.lock import exclusive
from pipeline.metadata import check_store
from pipeline.outputs import forget_missing
from pipeline.paths import RunPaths
from pipeline.progress import ComponentLines
from pipeline.pipeline import create_pipeline


def run(config: PipelineConfig, dag_runner: Optional[tfx_runner.TfxRunner] = None) -> None:
    """Runs the pipeline here, one run at a time per output directory.

    ``dag_runner`` defaults to the LocalDagRunner; the beam runner passes its own."""
    metadata_db = RunPaths.of(config.pipeline).metadata_db
    connection = metadata.sqlite_metadata_connection_config(metadata_db)
    with exclusive(config.pipeline.local_dir):
        check_store(metadata_db)
        gone = forget_missing(metadata_db)
        if gone:
            print(gone, flush=True)
        with ComponentLines(metadata_db):
            (dag_runner or LocalDagRunner()).run(create_pipeline(config, connection))
