"""One line per component as it finishes, while the pipeline runs.

TFX's runners call back nobody, but every runner that executes here records
each execution in ML Metadata as it ends; a thread reads the run's
executions from the store (read-only) twice a second and prints the new
ones. So the same lines come from the LocalDagRunner and the BeamDagRunner.
"""
from __future__ import annotations

import sys
import threading
from typing import Optional, Set, TextIO

from pipeline import metadata

POLL_SECONDS = 0.5
DONE = ("COMPLETE", "CACHED", "FAILED", "CANCELED")


def line(node: str, state: str, seconds: float) -> str:
    return f"  {node:<25} {state:<8} {seconds:7.2f} s"


class ComponentLines:
    """Use as a context manager around a pipeline run; ``out`` (default: stdout as it is
    when the run starts, so --quiet's redirection applies) gets the lines."""

    def __init__(self, metadata_db: str, out: Optional[TextIO] = None):
        self.metadata_db = metadata_db
        self.out = out or sys.stdout
        self.printed: Set[int] = set()  # execution ids
        self.previous_run: Optional[str] = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="clipflow-progress", daemon=True)

    def __enter__(self) -> "ComponentLines":
        self.previous_run = self._latest_run()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self._print_new()  # what finished between the last poll and the end

    def _watch(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            self._print_new()

    def _latest_run(self) -> Optional[str]:
        try:
            return metadata.latest_run_id(metadata.open_store(self.metadata_db))
        except Exception:  # noqa: BLE001  (no store yet, or busy being written: next poll)
            return None

    def _print_new(self) -> None:
        try:
            store = metadata.open_store(self.metadata_db)
            run_id = metadata.latest_run_id(store)
            if run_id is None or run_id == self.previous_run:
                return  # this run's context does not exist yet
            executions = metadata.run_executions(store, run_id)
        except Exception:  # noqa: BLE001  (the store is being written: the next poll reads it)
            return
        for execution in executions:
            if execution.state in DONE and execution.execution_id not in self.printed:
                self.printed.add(execution.execution_id)
                print(line(execution.node, execution.state, execution.wall_seconds), file=self.out, flush=True)
