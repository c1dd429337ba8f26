"""One module per orchestrator; each turns a PipelineConfig into a run or a spec."""
from __future__ import annotations

from pipeline import summary
from pipeline.config import PipelineConfig
from pipeline.runners import beam, kubeflow_v2, local

EMBEDDED = {"local": local.run, "beam": beam.run}  # run here, with SQLite ML Metadata; then summary.json
COMPILED = {"kubeflow-v2": kubeflow_v2.run}  # write a spec for an orchestrator elsewhere; return what was written


def run(config: PipelineConfig) -> str:
    """Runs (or compiles) the pipeline with the runner the config names; returns what to tell the user."""
    name = config.pipeline.runner
    if name in COMPILED:
        return COMPILED[name](config)
    EMBEDDED[name](config)
    return summary.describe(summary.write_summary(config))
