"""``TF_CONFIG``, the cluster a cluster manager describes to each process: read and checked in one place.

The Trainer reads it (distribute.py); the pipeline checks it before any component runs, so a
TF_CONFIG left in a shell by mistake is refused in one line at the start, not after the data
stages, deep in the Trainer, as a JSON error that does not name it. No TensorFlow import here:
the check runs while the command starts.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from components.common.errors import ConfigError

FIX = "unset TF_CONFIG to run on this machine alone, or set it as a cluster manager does: " \
      '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'


def read() -> Dict[str, Any]:
    """TF_CONFIG as a dict, ``{}`` when unset or empty; one ConfigError line when it cannot describe this process."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({err}); {FIX}") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    if not _is_cluster(cluster):
        raise ConfigError(f"TF_CONFIG names no cluster (no \"cluster\" of task lists in {_short(text)}); {FIX}")
    _check_task(spec, cluster)
    return spec


def _is_cluster(cluster: Any) -> bool:
    """A non-empty mapping of task kind -> list of addresses."""
    return isinstance(cluster, dict) and any(cluster.values()) and all(
        isinstance(tasks, list) and all(isinstance(address, str) for address in tasks) for tasks in cluster.values()
    )


def _check_task(spec: Dict[str, Any], cluster: Dict[str, list]) -> None:
    task = spec.get("task", {})  # none: worker 0, as TensorFlow assumes
    kind, index = (task.get("type", "worker"), task.get("index", 0)) if isinstance(task, dict) else (task, None)
    if not (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(cluster.get(kind) or [])):
        tasks = ", ".join(f"{name}: {len(addresses)}" for name, addresses in cluster.items())
        shown = json.dumps(task) if "task" in spec else "none (so worker 0)"
        raise ConfigError(
            f"TF_CONFIG's task for this process, {shown}, is not in its cluster ({tasks} task(s)); give it a "
            f"task type the cluster lists and an index below that list's length, or {FIX}"
        )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
