"""``python -m pipeline.run``: CLI -> config -> runner -> summary.

Errors meant for the user (bad config, bad data) end the run with one line
and exit status 2; any other failure with one line naming the component
and the log that holds the traceback, and exit status 3. ``--debug`` shows
the traceback instead.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from typing import Any, Dict, List, Optional

from components.common.typed import flatten
from pipeline.config import EMBEDDED_RUNNERS, PipelineConfig
from pipeline.exits import attributed, exit_process, report_user_errors
from pipeline.logs import quiet_terminal, send_logs_to_file
from pipeline.prepare import build_config

# Shown on their own at the start, not among the changed settings.
LOCATIONS = ("data.data_dir", "pipeline.output_dir", "pipeline.metadata_dir", "pipeline.runner")


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


def start_lines(config: PipelineConfig) -> List[str]:
    """Where the data comes from and the results go, and the settings that differ from the
    defaults (the whole config is in the log and summary.json)."""
    defaults = flatten(PipelineConfig().to_dict())
    changed = {
        key: value for key, value in flatten(config.to_dict()).items() if key not in LOCATIONS and defaults.get(key) != value
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


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.INFO)
    else:
        quiet_terminal()
    return report_user_errors(args.debug, lambda: run(args))


if __name__ == "__main__":
    exit_process(main())
