"""Which ``tf.distribute`` strategy the Trainer runs under, and where each worker writes.

A cluster manager (Vertex AI Training's worker pools among them) starts the
same Trainer on every machine and tells each, in ``TF_CONFIG``, the cluster
and which task it is. With more than one task the Trainer trains with
``MultiWorkerMirroredStrategy``; on one machine with several GPUs with
``MirroredStrategy``; else with no distribution at all. Every worker trains
and checkpoints; only the chief writes what the pipeline keeps (TensorBoard
logs, the gradient report, the model): the others write theirs to a
temporary folder, as TensorFlow's multi-worker guide asks, since saving may
take part in collective ops.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict

import tensorflow as tf


def _tf_config() -> Dict[str, Any]:
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def _cluster_size() -> int:
    cluster = _tf_config().get("cluster", {})
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def strategy_from_environment() -> tf.distribute.Strategy:
    """The strategy for this process. Call it before any other TensorFlow op: collective ops
    (MultiWorkerMirroredStrategy's all-reduce) can only be configured at program start-up."""
    if _cluster_size() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def task() -> tuple[str, int]:
    """This task's type and index (``("worker", 0)`` outside a cluster)."""
    spec = _tf_config().get("task", {})
    return spec.get("type", "worker"), int(spec.get("index", 0))


def is_chief() -> bool:
    """The task that writes what the pipeline keeps: the chief, or worker 0 where the cluster has no chief."""
    kind, index = task()
    if "chief" in _tf_config().get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and index == 0


def own_path(path: str) -> str:
    """``path`` for the chief; for another worker, a folder of its own in the local temporary directory."""
    if is_chief():
        return path
    kind, index = task()
    return os.path.join(tempfile.gettempdir(), f"clipflow-{kind}-{index}", os.path.basename(path.rstrip("/")))
