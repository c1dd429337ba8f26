"""One module per orchestrator; each turns a PipelineConfig into a run or a spec.

Runner modules are imported only when chosen: each pulls in its orchestrator's
own TFX modules, start-up time every command would otherwise pay."""
from __future__ import annotations

import importlib
from types import ModuleType

from pipeline import summary
from pipeline.config import EMBEDDED_RUNNERS, PipelineConfig

EMBEDDED = {name: name for name in EMBEDDED_RUNNERS}  # run here, with SQLite ML Metadata; then summary.json
COMPILED = {"kubeflow-v2": "kubeflow_v2"}  # write a spec for an orchestrator elsewhere; return what was written


def _runner_module(name: str) -> ModuleType:
    modules = {**EMBEDDED, **COMPILED}
    return importlib.import_module(f"{__name__}.{modules[name]}")


def run(config: PipelineConfig) -> str:
    """Runs (or compiles) the pipeline with the runner the config names; returns what to tell the user."""
    name = config.pipeline.runner
    runner = _runner_module(name)
    if name in COMPILED:
        return runner.run(config)
    runner.run(config)
    return summary.describe(summary.write_summary(config))
