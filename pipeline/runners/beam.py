"""TFX's BeamDagRunner: the DAG itself runs as a Beam pipeline (in-process here).

TFX's maintainers call it deprecated in favour of the LocalDagRunner; it is
kept thin, for users whose tooling expects it. Beam options for the
components' own data processing are ``pipeline.beam_args`` either way."""
from __future__ import annotations

from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

from pipeline.config import PipelineConfig
from pipeline.runners import local


def run(config: PipelineConfig) -> None:
    local.run(config, BeamDagRunner())
