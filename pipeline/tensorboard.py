"""``python -m pipeline.tensorboard``: every Trainer run of a pipeline, side by side.

Finds the Trainer executions in the pipeline's ML Metadata, names each run
by the settings that differ between them (``scale=50,clip=none``), and
serves TensorBoard on 127.0.0.1 with those runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from typing import Dict, List, Optional

from pipeline import metadata
from pipeline.paths import RunPaths

# Short names for the settings people compare most.
ALIASES = {
    "transform.divisor": "scale",
    "transform.mode": "scaling",
    "clip.strategy": "clip",
    "clip.threshold": "clip_at",
    "trainer.learning_rate": "lr",
}


SECTIONS = ["transform", "trainer", "clip", "telemetry"]  # names list settings in data-flow order


@dataclasses.dataclass(frozen=True)
class TrainerRun:
    execution_id: int
    logdir: str
    settings: Dict[str, object]  # flattened: "clip.strategy" -> "none"


def _flatten(config: dict, prefix: str = "") -> Dict[str, object]:
    flat: Dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


def _custom_config(execution) -> dict:
    value = execution.custom_properties.get("custom_config")
    return json.loads(value.string_value) if value is not None and value.string_value else {}


def trainer_runs(metadata_db: str) -> List[TrainerRun]:
    """Every Trainer execution that trained (cached re-runs are the same run), oldest first."""
    store = metadata.open_store(metadata_db)
    executions = {e.id: e for e in store.get_executions()}
    types = {t.id: t.name for t in store.get_execution_types()}
    events = store.get_events_by_execution_ids(list(executions))
    artifacts = {a.id: a for a in store.get_artifacts_by_id({e.artifact_id for e in events})}
    producer = {e.artifact_id: e.execution_id for e in events if e.type == e.OUTPUT}
    runs = []
    for execution in sorted(executions.values(), key=lambda e: e.id):
        if not types[execution.type_id].endswith("Trainer") or execution.last_known_state != execution.COMPLETE:
            continue
        mine = [e for e in events if e.execution_id == execution.id]
        logdir = next(
            (artifacts[e.artifact_id].uri for e in mine if e.type == e.OUTPUT and e.path.steps[0].key == "model_run"), None
        )
        transform_graph = next(
            (e.artifact_id for e in mine if e.type == e.INPUT and e.path.steps[0].key == "transform_graph"), None
        )
        settings = _flatten(_custom_config(execution))
        if transform_graph in producer:
            settings.update({f"transform.{k}": v for k, v in _flatten(_custom_config(executions[producer[transform_graph]])).items()})
        settings = {k.replace("transform.scaling.", "transform."): v for k, v in settings.items()}
        if logdir:
            runs.append(TrainerRun(execution.id, logdir, settings))
    return runs


def run_names(runs: List[TrainerRun]) -> List[str]:
    """``scale=50,clip=none``: the settings that differ; the execution id where none do."""
    keys = sorted({k for r in runs for k in r.settings}, key=_data_flow_order)
    differing = [k for k in keys if len({repr(r.settings.get(k)) for r in runs}) > 1]
    names = []
    for run in runs:
        parts = [f"{ALIASES.get(k, k.split('.')[-1])}={_show(run.settings.get(k))}" for k in differing]
        names.append(",".join(parts) or f"trainer-{run.execution_id}")
    if len(set(names)) < len(names):  # same settings trained twice: tell them apart
        names = [f"{name},trainer-{run.execution_id}" for name, run in zip(names, runs)]
    return names


def _data_flow_order(key: str) -> tuple:
    section = key.split(".")[0]
    return (SECTIONS.index(section) if section in SECTIONS else len(SECTIONS), key)


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def logdir_spec(runs: List[TrainerRun]) -> str:
    return ",".join(f"{name}:{run.logdir}" for name, run in zip(run_names(runs), runs))


def start_server(spec: str, host: str, port: int) -> str:
    """Starts TensorBoard in this process (background threads); returns its URL."""
    from tensorboard import program  # noqa: PLC0415

    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir_spec", spec, "--host", host, "--port", str(port)])
    return board.launch()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tensorboard", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs", help="the pipeline's output directory, or its --metadata-dir "
                        "if the run had one (where metadata.sqlite is; default ./runs)")
    parser.add_argument("--print-only", action="store_true", help="list the runs and the command; do not serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=6006)
    args = parser.parse_args(argv)
    db = RunPaths(args.output_dir, args.output_dir).metadata_db
    try:
        runs = trainer_runs(db)
    except Exception as err:  # noqa: BLE001 (MLMD raises its own error types)
        print(f"clipflow: error: cannot read ML Metadata at {db} ({err}); run the pipeline first", file=sys.stderr)
        return 2
    if not runs:
        print(f"clipflow: error: no completed Trainer run in {db}; run the pipeline first", file=sys.stderr)
        return 2
    spec = logdir_spec(runs)
    for name, run in zip(run_names(runs), runs):
        print(f"{name}: {run.logdir}")
    print(f"{shlex.quote(sys.executable)} -m tensorboard.main --logdir_spec {shlex.quote(spec)} --host {args.host} --port {args.port}")
    if args.print_only:
        return 0
    print(f"TensorBoard at {start_server(spec, args.host, args.port)} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
