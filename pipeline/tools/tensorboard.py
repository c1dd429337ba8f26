"""``python -m pipeline.tools.tensorboard``: every Trainer run of a pipeline, side by side.

Finds the Trainer executions in the pipeline's ML Metadata, names each run
by the settings that differ between them (``scale=50 clip=none``), writes
the HParams experiment over them (``<output-dir>/tensorboard``, TensorBoard's
top run), and serves TensorBoard on 127.0.0.1 with those runs: the Clipping
dashboard (Custom Scalars) and the HParams table show them side by side.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from typing import Dict, List, Optional

from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from components.common.typed import flatten
from components.trainer import dashboards
from components.trainer.options import NOT_SETTINGS, unread_clip_settings
from pipeline import metadata
from pipeline.outputs import is_there
from pipeline.paths import RunPaths

# Short names for the settings people compare most.
ALIASES = {
    "transform.divisor": "scale",
    "transform.mode": "scaling",
    "clip.strategy": "clip",
    "clip.threshold": "clip_at",
    "trainer.learning_rate": "lr",
    "trainer.seed": "seed",
}


SECTIONS = ["transform", "trainer", "clip", "telemetry"]  # names list settings in data-flow order


@dataclasses.dataclass(frozen=True)
class TrainerRun:
    execution_id: int
    logdir: str
    settings: Dict[str, object]  # flattened: "clip.strategy" -> "none"


def trainer_runs(metadata_db: str) -> List[TrainerRun]:
    """Every Trainer execution that trained (cached re-runs are the same run), oldest first."""
    runs = []
    for execution in metadata.node_executions(metadata.open_store(metadata_db), "Trainer"):
        model_run = execution.outputs.get("model_run")
        if execution.state != "COMPLETE" or not model_run:
            continue
        custom_config = execution.properties.get("custom_config")
        settings = flatten(json.loads(custom_config.string_value) if custom_config is not None else {})
        for key in NOT_SETTINGS:  # a place and a name, not settings: runs are not named by them
            settings.pop(key, None)
        for unread in unread_clip_settings(str(settings.get("clip.strategy"))):  # nor by what their strategy ignores
            settings.pop(unread, None)
        runs.append(TrainerRun(execution.execution_id, model_run[0].uri, settings))
    return runs


def run_names(runs: List[TrainerRun]) -> List[str]:
    """``scale=50 clip=none``: the settings that differ; the execution id where none do. Spaces
    between them: TensorBoard's ``--logdir_spec`` splits at commas (and a name ends at its first colon)."""
    keys = sorted({k for r in runs for k in r.settings}, key=_data_flow_order)
    # Among the runs that have the setting: a threshold only clipped runs record does not name the others.
    differing = [k for k in keys if len({repr(r.settings[k]) for r in runs if k in r.settings}) > 1]
    names = []
    for run in runs:
        parts = [f"{ALIASES.get(k, k.split('.')[-1])}={_show(run.settings[k])}" for k in differing if k in run.settings]
        names.append(" ".join(parts) or f"trainer-{run.execution_id}")
    if len(set(names)) < len(names):  # same settings trained twice: tell them apart
        names = [f"{name} trainer-{run.execution_id}" for name, run in zip(names, runs)]
    return names


def _data_flow_order(key: str) -> tuple:
    section = key.split(".")[0]
    return (SECTIONS.index(section) if section in SECTIONS else len(SECTIONS), key not in ALIASES, key)


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# The run TensorBoard makes of the experiment folder (unnamed in the logdir spec): it holds the HParams
# table's columns and metrics, which the plugin reads from whichever run has them, and no data of its own.
EXPERIMENT_RUN = "."


def logdir_spec(runs: List[TrainerRun], experiment_dir: str) -> str:
    """Each run under its name; the experiment folder unnamed (its run is ``EXPERIMENT_RUN``)."""
    return ",".join([*(f"{name}:{run.logdir}" for name, run in zip(run_names(runs), runs)), experiment_dir])


def write_experiment(runs: List[TrainerRun], experiment_dir: str) -> None:
    """The HParams experiment of these runs (its columns and values), as the only event file in ``experiment_dir``."""
    os.makedirs(experiment_dir, exist_ok=True)
    for name in os.listdir(experiment_dir):
        if name.startswith("events.out.tfevents."):
            os.remove(os.path.join(experiment_dir, name))
    writer = EventFileWriter(experiment_dir)
    summary = dashboards.experiment_summary([dashboards.hparam_values(run.settings) for run in runs])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))
    writer.close()


def prepare(output_dir: str) -> tuple[List[TrainerRun], str]:
    """The output dir's Trainer runs whose logs are there, and the logdir spec that serves them (their
    HParams experiment written); ML Metadata's own errors propagate."""
    paths = RunPaths(output_dir, output_dir)
    recorded = trainer_runs(paths.metadata_db)
    runs = [run for run in recorded if is_there(run.logdir)]
    gone = [run.logdir for run in recorded if run not in runs]
    if gone:
        print(f"left out {len(gone)} Trainer run(s) whose TensorBoard logs are gone: {', '.join(gone)}")
    experiment_dir = os.path.abspath(paths.tensorboard_experiment)
    if runs:
        write_experiment(runs, experiment_dir)
    return runs, logdir_spec(runs, experiment_dir)


class RunsShown:
    """TensorBoard's data with the experiment folder's run left out of its run lists (the sidebar's, Time
    Series'), where it would show as a run named ``.`` with nothing in it; the HParams plugin still reads
    the experiment from it. Everything else is the data provider's own."""

    def __init__(self, provider, data_location: str):
        self._provider, self._data_location = provider, data_location

    def list_runs(self, ctx=None, *, experiment_id):
        return [run for run in self._provider.list_runs(ctx, experiment_id=experiment_id)
                if run.run_name != EXPERIMENT_RUN]

    def experiment_metadata(self, ctx=None, *, experiment_id):
        """Where the data is, as the user named it (the sidebar shows it), not the spec of absolute paths."""
        from tensorboard.data import provider  # noqa: PLC0415

        return provider.ExperimentMetadata(data_location=self._data_location)

    def __getattr__(self, name: str):
        return getattr(self._provider, name)


def start_server(spec: str, host: str, port: int, data_location: str = "") -> str:
    """Starts TensorBoard in this process (background threads) with ``RunsShown``'s run lists; returns its URL."""
    from tensorboard import program  # noqa: PLC0415

    class Board(program.TensorBoard):
        def _make_data_provider(self):  # TensorBoard 2.16's one place that makes it (pinned)
            provider, multiplexer = super()._make_data_provider()
            return RunsShown(provider, data_location or spec), multiplexer

    board = Board()
    board.configure(argv=[None, "--logdir_spec", spec, "--host", host, "--port", str(port)])
    return board.launch()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.tensorboard", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs", help="the pipeline's output directory, or its --metadata-dir "
                        "if the run had one (where metadata.sqlite is; default ./runs)")
    parser.add_argument("--print-only", action="store_true", help="list the runs and the command; do not serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=6006)
    args = parser.parse_args(argv)
    db = RunPaths(args.output_dir, args.output_dir).metadata_db
    try:
        runs, spec = prepare(args.output_dir)
    except Exception as err:  # noqa: BLE001 (MLMD raises its own error types)
        print(f"clipflow: error: cannot read ML Metadata at {db} ({err}); run the pipeline first", file=sys.stderr)
        return 2
    if not runs:
        print(f"clipflow: error: no completed Trainer run in {db}; run the pipeline first", file=sys.stderr)
        return 2
    for name, run in zip(run_names(runs), runs):
        print(f"{name}: {run.logdir}")
    print(f"{shlex.quote(sys.executable)} -m tensorboard.main --logdir_spec {shlex.quote(spec)} "
          f"--host {args.host} --port {args.port}")
    if args.print_only:
        return 0
    url = start_server(spec, args.host, args.port, f"the Trainer runs of {args.output_dir}")
    print(f"TensorBoard at {url} (Ctrl-C to stop)\n  Clipping dashboard: {url}#custom_scalars\n  "
          f"HParams table: {url}#hparams", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
