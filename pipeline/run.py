"""``python -m pipeline.run``: CLI -> config -> runner -> summary.

Errors meant for the user (bad config, bad data) end the run with one line
and exit status 2; any other failure with one line naming the component
and the log that holds the traceback, and exit status 3. ``--debug`` shows
the traceback instead.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, NoReturn, Optional, Sequence

from components.common.errors import ClipflowError, ConfigError
from components.common.typed import flatten
from pipeline.config import EMBEDDED_RUNNERS, PipelineConfig, is_uri, load_config
from pipeline.data_source import resolve_data_dir
from pipeline.paths import RunPaths
from pipeline.logs import quiet_terminal, send_logs_to_file

FAILED = 3  # exit status when a run failed for another reason than bad input (2)
RESUME_HINT = (
    "Run the same command again to resume: finished components are reused from the cache "
    "and the Trainer continues from its last checkpoint."
)
# Shown on their own at the start, not among the changed settings.
LOCATIONS = ("data.data_dir", "pipeline.output_dir", "pipeline.metadata_dir", "pipeline.runner")
BEAM_CONTEXT = re.compile(r" \[while running '[^']*'\]")


def one_line(err: Exception) -> str:
    """The error's own message, without the step names Beam appends."""
    return BEAM_CONTEXT.sub("", str(err)).strip()


class RunFailed(Exception):
    """A component or the runner failed, not because of bad input; the message is the user's one line."""


def failed_component(config: PipelineConfig) -> Optional[str]:
    """The component whose execution the latest run recorded as FAILED, if ML Metadata says."""
    from pipeline import metadata  # noqa: PLC0415

    try:
        store = metadata.open_store(RunPaths.of(config.pipeline).metadata_db)
        run_id = metadata.latest_run_id(store)
        failed = [e.node for e in metadata.run_executions(store, run_id) if e.state == "FAILED"] if run_id else []
    except Exception:  # noqa: BLE001  (no store, or not readable: say less, not crash)
        return None
    return failed[-1] if failed else None


def attributed(config: PipelineConfig, log_file: Optional[str], work: Callable[[], Any]) -> Any:
    """Runs ``work`` (a pipeline run); an exception that is not bad input becomes a RunFailed naming
    the component that failed and the log that holds the traceback (written there now)."""
    try:
        return work()
    except ClipflowError:
        raise
    except Exception as err:
        logging.getLogger(__name__).error("the run failed", exc_info=err)
        first = one_line(err).splitlines()[0][:300] if one_line(err) else ""
        where = failed_component(config) if config.pipeline.runner in EMBEDDED_RUNNERS else None
        raise RunFailed(
            f"{where or 'the ' + config.pipeline.runner + ' runner'} failed: {type(err).__name__}: {first}; "
            f"the traceback is in {log_file or 'the log'} (--debug shows it here)"
        ) from err


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.run", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML file with settings (sections as in PipelineConfig)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one setting")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files or mnist.npz (or an .npz path); gs:// etc. work")
    parser.add_argument("--output-dir", help="where artifacts and the serving model go (default ./runs); "
                        "gs:// etc. work with --metadata-dir")
    parser.add_argument("--metadata-dir", help="local folder for ML Metadata (SQLite), the run lock, logs and "
                        "summary.json (default: the output dir, which must then be local)")
    parser.add_argument("--runner", help="orchestrator: local (LocalDagRunner, the default), beam (BeamDagRunner), "
                        "kubeflow-v2 (compile a KFP v2 / Vertex AI PipelineSpec)")
    parser.add_argument("--beam-arg", action="append", metavar="--FLAG=VALUE",
                        help="Beam pipeline option for every Beam component, repeatable; "
                        "write it with '=': --beam-arg=--direct_num_workers=2")
    kubeflow = parser.add_argument_group("kubeflow-v2")
    kubeflow.add_argument("--output", help="file for the compiled PipelineSpec (default clipflow_pipeline.json)")
    kubeflow.add_argument("--image", help="container image the spec runs (built from the Dockerfile)")
    kubeflow.add_argument("--submit-vertex", action="store_const", const=True,
                          help="submit the compiled spec to Vertex AI Pipelines")
    kubeflow.add_argument("--project", help="Google Cloud project for --submit-vertex")
    kubeflow.add_argument("--region", help="Vertex AI region for --submit-vertex, e.g. us-central1")
    kubeflow.add_argument("--service-account", help="service account the Vertex AI job runs as")
    parser.add_argument("--debug", action="store_true", help="show logs and tracebacks on the terminal")
    parser.add_argument("--quiet", action="store_true", help="print only the result (and errors): no settings, "
                        "no progress lines (they still go to the log)")
    return parser.parse_args(argv)


def flag_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The command-line flags as settings (section.key -> value); unset flags are left out."""
    return {
        "data.data_dir": args.data_dir,
        "pipeline.output_dir": args.output_dir,
        "pipeline.metadata_dir": args.metadata_dir,
        "pipeline.runner": args.runner,
        "pipeline.beam_args": args.beam_arg,
        "kubeflow.output_file": args.output,
        "kubeflow.image": args.image,
        "kubeflow.submit_vertex": args.submit_vertex,
        "kubeflow.project": args.project,
        "kubeflow.region": args.region,
        "kubeflow.service_account": args.service_account,
    }


def check_writable(key: str, directory: str) -> str:
    """``directory`` (any file system TensorFlow opens), created and probed with a write;
    returned absolute when local."""
    import tensorflow as tf  # noqa: PLC0415  (slow import; only here, after the config parsed)

    directory = directory if is_uri(directory) else os.path.abspath(directory)
    probe = os.path.join(directory, ".clipflow-write-probe")
    try:
        tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except tf.errors.OpError as err:
        flag = "--" + key.split(".")[-1].replace("_", "-")
        raise ConfigError(f"{key} {directory} cannot be written ({err.message}); choose another {flag}") from None
    return directory


def with_local_paths(config: PipelineConfig, env_data_dir: Optional[str]) -> PipelineConfig:
    """Embedded runners: writable output and metadata dirs, and MNIST found now (see data_source)."""
    settings = config.pipeline
    output_dir = check_writable("pipeline.output_dir", settings.output_dir)
    metadata_dir = check_writable("pipeline.metadata_dir", settings.metadata_dir) if settings.metadata_dir else ""
    return dataclasses.replace(
        config,
        pipeline=dataclasses.replace(settings, output_dir=output_dir, metadata_dir=metadata_dir),
        data=dataclasses.replace(config.data, data_dir=resolve_data_dir(config.data.data_dir, env_data_dir)),
    )


def with_cluster_paths(config: PipelineConfig) -> PipelineConfig:
    """Compiled runners: paths are read by the cluster, not here, so they are only checked for form
    (and $MNIST_DATA_DIR, a folder on this machine, is not used)."""
    for key, path, example in (
        ("pipeline.output_dir", config.pipeline.output_dir, "gs://BUCKET/clipflow"),
        ("data.data_dir", config.data.data_dir, "gs://BUCKET/mnist"),
    ):
        if not (is_uri(path) or os.path.isabs(path)):
            raise ConfigError(
                f"{key} {path!r} must be a URI or absolute path the cluster can reach with --runner "
                f"{config.pipeline.runner}; e.g. {example}"
            )
    return dataclasses.replace(
        config,
        kubeflow=dataclasses.replace(config.kubeflow, output_file=os.path.abspath(config.kubeflow.output_file)),
    )


def build_config(
    env_data_dir: Optional[str],
    config_file: Optional[str] = None,
    overrides: Sequence[str] = (),
    flags: Mapping[str, Any] = MappingProxyType({}),
) -> PipelineConfig:
    """The validated config, its paths made ready for the runner it names.

    ``flags`` (section.key -> value, None for unset) are overrides like any
    other, applied last."""
    settings = [*overrides, *(f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None)]
    config = load_config(config_file, settings)
    if config.pipeline.runner in EMBEDDED_RUNNERS:
        return with_local_paths(config, env_data_dir)
    return with_cluster_paths(config)


def report_user_errors(debug: bool, work: Callable[[], int]) -> int:
    """Runs a command's ``work``: a user error ends as one stderr line and exit 2
    (the traceback too with ``debug``), Ctrl-C as exit 130 with how to resume."""
    try:
        return work()
    except ClipflowError as err:
        if debug:
            raise
        print(f"clipflow: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"clipflow: interrupted. {RESUME_HINT}", file=sys.stderr)
        return 130
    except RunFailed as err:
        if debug:
            raise err.__cause__ from None
        print(f"clipflow: failed: {err}", file=sys.stderr)
        return FAILED
    except Exception as err:  # a bug outside any run: still one line
        if debug:
            raise
        logging.getLogger(__name__).error("unexpected error", exc_info=err)
        print(f"clipflow: failed: unexpected {type(err).__name__}: {one_line(err)[:300]}; --debug shows the traceback",
              file=sys.stderr)
        return FAILED


def exit_process(code: int) -> NoReturn:
    """Ends a command without the interpreter's teardown.

    Freeing the TensorFlow, Beam and TFX modules took seconds after every
    run (docs/benchmarks.md), with nothing left to write: the run's files are closed and ML Metadata's
    transactions committed. Exit handlers (logging's final flush among them)
    still run, as they would at a normal exit. Under a profiler, debugger or
    coverage tool the exit is the normal one: they write their results then."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()  # noqa: SLF001  (what the interpreter itself calls at exit)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.INFO)
    else:
        quiet_terminal()
    return report_user_errors(args.debug, lambda: run(args))


def start_lines(config: PipelineConfig) -> List[str]:
    """Where the data comes from and the results go, and the settings that differ from the
    defaults (the whole config is in the log and summary.json)."""
    changed = {
        key: value for key, value in flatten(config.to_dict()).items()
        if key not in LOCATIONS and flatten(PipelineConfig().to_dict()).get(key) != value
    }
    settings = ", ".join(f"{key}={json.dumps(value)}" for key, value in changed.items()) or "none"
    metadata_dir = f" (ML Metadata, logs: {config.pipeline.metadata_dir})" if config.pipeline.metadata_dir else ""
    return [
        f"clipflow: {config.pipeline.runner} run of {config.data.data_dir} into {config.pipeline.output_dir}{metadata_dir}",
        f"settings other than the defaults: {settings}",
    ]


def run(args: argparse.Namespace) -> int:
    config = build_config(os.environ.get("MNIST_DATA_DIR"), args.config, args.set, flag_settings(args))
    log_file = None
    if not args.debug and config.pipeline.runner in EMBEDDED_RUNNERS:
        log_file = send_logs_to_file(config.pipeline.local_dir)
    logging.getLogger(__name__).info("clipflow config:\n%s", config.to_json())
    from pipeline import runners  # noqa: PLC0415  (TFX imports are slow; parse errors fail fast)

    with progress_to(log_file if args.quiet else None):
        for line in start_lines(config) + ([f"full log: {log_file}"] if log_file else []):
            print(line, flush=True)
        result = attributed(config, log_file, lambda: runners.run(config))
    print(result, flush=True)
    return 0


@contextlib.contextmanager
def progress_to(log_file: Optional[str]):
    """With a log file (--quiet), what the run prints on the way (settings, components, epochs) goes there."""
    if log_file is None:
        yield
        return
    with open(log_file, "a") as log, contextlib.redirect_stdout(log):
        yield


if __name__ == "__main__":
    exit_process(main())
