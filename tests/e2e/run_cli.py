"""Run ``python -m pipeline.run`` as a user would, in a subprocess."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from typing import Dict, Optional

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODES = [
    "ImportSchemaGen", "MnistExampleGen", "StatisticsGen", "ExampleValidator", "AnomalyGate",
    "Transform", "Trainer", "Evaluator", "TrainingHealthGate", "Pusher",
]
# The e2e runs' settings: a blessing bar the 4000-image slice clears, histograms often enough to see.
COMMON = ("--set", "evaluator.accuracy_threshold=0.9", "--set", "telemetry.histogram_every_n_steps=20")


def run_pipeline(*args: str, env: Optional[Dict[str, str]] = None, cwd: str = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def read_summary(output_dir: str, name: str = "summary.json") -> dict:
    with open(os.path.join(output_dir, name)) as f:
        return json.load(f)


FIRST_SUMMARY = "first-summary.json"  # the first run's summary.json, kept: later runs in its dir overwrite that


def read_first_summary(output_dir: str) -> dict:
    return read_summary(output_dir, FIRST_SUMMARY)


def states(summary: dict) -> dict:
    return {node: info["state"] for node, info in summary["components"].items()}


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    """Exit 2, and stderr is one line: the error naming the problem and the fix, no traceback."""
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("clipflow: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def seeded_output_dir(first_run: tuple, destination) -> str:
    """A new output dir whose ML Metadata is a copy of the first run's: the cache answers ingest, validation and
    Transform from the first run's artifacts, while the Trainer (its checkpoint root is the output dir's) and what
    follows run anew into this dir. Nothing is written into the first run's dir."""
    os.makedirs(destination)
    # SQLite's backup, not a file copy: a consistent copy even while test_pipeline re-runs in the first run's dir.
    with contextlib.closing(sqlite3.connect(os.path.join(first_run[0], "metadata.sqlite"))) as source, \
            contextlib.closing(sqlite3.connect(os.path.join(destination, "metadata.sqlite"))) as copy:
        source.backup(copy)
    return str(destination)


def copy_checkout(root: str) -> str:
    """A temporary checkout of the project's code: run from it, Python imports its copy."""
    for folder in ("components", "pipeline", "schemas"):
        shutil.copytree(os.path.join(REPO, folder), os.path.join(root, folder),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root


def edit(path: str, old: str, new: str) -> None:
    with open(path) as f:
        text = f.read()
    assert old in text, f"{old!r} not in {path}"
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))
