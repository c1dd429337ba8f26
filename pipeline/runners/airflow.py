"""TFX's AirflowDagRunner: the pipeline as an Airflow DAG (``dags/clipflow.py``).

Airflow imports DAG files itself, so there are no flags: the config comes
from the TOML file named by ``$CLIPFLOW_CONFIG`` (optional) and the data from
``data.data_dir`` or ``$MNIST_DATA_DIR``, as for ``python -m pipeline.run``.
ML Metadata is SQLite in ``pipeline.local_dir``, as with the local runner.
Airflow lives in its own environment (``make airflow``): it cannot share the
main one's pins (docs/runners.md, "Airflow").
"""
from __future__ import annotations

import datetime
import os

from airflow import models
from tfx import v1 as tfx
from tfx.orchestration.airflow.airflow_dag_runner import AirflowDagRunner, AirflowPipelineConfig

from pipeline.config import PipelineConfig
from pipeline.paths import RunPaths
from pipeline.pipeline import create_pipeline
from pipeline.prepare import build_config

START_DATE = datetime.datetime(2026, 1, 1)


def create_dag(config: PipelineConfig) -> models.DAG:
    """One Airflow task per component; triggered by hand (no schedule)."""
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        RunPaths.of(config.pipeline).metadata_db
    )
    runner = AirflowDagRunner(
        AirflowPipelineConfig(airflow_dag_config={"schedule_interval": None, "start_date": START_DATE, "catchup": False})
    )
    return runner.run(create_pipeline(config, connection))


def dag_from_environment() -> models.DAG:
    return create_dag(build_config(os.environ.get("MNIST_DATA_DIR"), os.environ.get("CLIPFLOW_CONFIG")))
