"""``python -m pipeline.run``: CLI -> config -> runner -> summary.

Errors meant for the user (bad config, bad data) end the run with one line
and exit status 2; ``--debug`` shows the traceback as well.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
from typing import Callable, List, Optional, Sequence

from components.common.errors import ClipflowError, ConfigError
from pipeline.config import PipelineConfig, load_config
from pipeline.data_source import resolve_data_dir
from pipeline.logs import quiet_terminal, send_logs_to_file

RESUME_HINT = (
    "Run the same command again to resume: finished components are reused from the cache "
    "and the Trainer continues from its last checkpoint."
)
BEAM_CONTEXT = re.compile(r" \[while running '[^']*'\]")


def one_line(err: Exception) -> str:
    """The error's own message, without the step names Beam appends."""
    return BEAM_CONTEXT.sub("", str(err)).strip()


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.run", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML file with settings (sections as in PipelineConfig)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one setting")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files or mnist.npz (or an .npz path)")
    parser.add_argument("--output-dir", help="where metadata, artifacts and summary.json go (default ./runs)")
    parser.add_argument("--runner", help="orchestrator: local (LocalDagRunner, the default)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def check_writable(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, ".clipflow-write-probe")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise ConfigError(f"pipeline.output_dir {directory} cannot be written ({err.strerror}); choose another --output-dir") from None


def build_config(
    env_data_dir: Optional[str],
    config_file: Optional[str] = None,
    overrides: Sequence[str] = (),
    data_dir: Optional[str] = None,
    output_dir: Optional[str] = None,
    runner: Optional[str] = None,
) -> PipelineConfig:
    """The validated config with the data location resolved and paths absolute.

    The flags are overrides like any other, applied last."""
    flags = {"data.data_dir": data_dir, "pipeline.output_dir": output_dir, "pipeline.runner": runner}
    settings = [*overrides, *(f"{key}={value!r}" for key, value in flags.items() if value)]
    config = load_config(config_file, settings)
    output_dir = os.path.abspath(config.pipeline.output_dir)
    check_writable(output_dir)
    return dataclasses.replace(
        config,
        pipeline=dataclasses.replace(config.pipeline, output_dir=output_dir),
        data=dataclasses.replace(config.data, data_dir=resolve_data_dir(config.data.data_dir, env_data_dir)),
    )


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


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.INFO)
    else:
        quiet_terminal()
    return report_user_errors(args.debug, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    config = build_config(
        os.environ.get("MNIST_DATA_DIR"), args.config, args.set, args.data_dir, args.output_dir, args.runner
    )
    print("clipflow config:\n" + config.to_json(), flush=True)
    if not args.debug:
        print(f"full log: {send_logs_to_file(config.pipeline.output_dir)}", flush=True)
    from pipeline import summary  # noqa: PLC0415  (TFX imports are slow; parse errors fail fast)
    from pipeline.runners import RUNNERS  # noqa: PLC0415

    RUNNERS[config.pipeline.runner](config)
    print(summary.describe(summary.write_summary(config)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
