"""Where log output goes: a file per run by default, the terminal with --debug.

TFX, Beam and TensorFlow log tracebacks and warnings by the hundred; a user
should see the config, the result, or one line saying what went wrong. The
full log is kept in the output directory for when that line is not enough.
"""
from __future__ import annotations

import logging
import os
import time
import warnings


def quiet_terminal() -> None:
    """Call first thing: TensorFlow's C++ logging is set when it loads, and
    import-time warnings fire before any log file exists."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Also for child processes (Beam's multi-processing workers), which start their own Python.
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    warnings.simplefilter("ignore")


def send_logs_to_file(output_dir: str) -> str:
    """Routes Python, absl and warnings output to ``<output_dir>/logs/``; returns the file."""
    from absl import logging as absl_logging  # noqa: PLC0415

    log_dir = os.path.join(output_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, time.strftime("run-%Y%m%d-%H%M%S.log"))
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.removeHandler(absl_logging.get_absl_handler())
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    # TensorFlow gives its logger a terminal handler of its own when it loads first.
    logging.getLogger("tensorflow").handlers.clear()
    logging.getLogger("tensorflow").propagate = True
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    logging.captureWarnings(True)
    return path
