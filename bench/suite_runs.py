"""How many pipeline runs a test suite started: the distinct TFX pipeline runs (ML Metadata contexts of
type ``pipeline_run``) in every SQLite store under a folder, a seeded copy of a store counting its runs once.

Usage: python -m bench.suite_runs FOLDER   (e.g. the suite's pytest --basetemp)
"""
from __future__ import annotations

import os
import sqlite3
import sys
from typing import Set


def pipeline_runs(folder: str) -> Set[str]:
    runs: Set[str] = set()
    for root, _, files in os.walk(folder):
        for name in files:
            if not name.endswith((".sqlite", ".db")):
                continue
            try:
                with sqlite3.connect(f"file:{os.path.join(root, name)}?mode=ro", uri=True) as store:
                    runs.update(row[0] for row in store.execute(
                        "SELECT c.name FROM Context c JOIN Type t ON c.type_id = t.id WHERE t.name = 'pipeline_run'"))
            except sqlite3.Error:  # not an ML Metadata store (Airflow's own database, say)
                continue
    return runs


if __name__ == "__main__":
    print(f"{len(pipeline_runs(sys.argv[1]))} pipeline runs")
