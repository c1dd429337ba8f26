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

import os
import tempfile

import tensorflow as tf

from components.common.errors import first_line
from components.trainer import tf_config


def _cluster_size() -> int:
    cluster = tf_config.read().get("cluster", {})
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def is_multi_worker() -> bool:
    """TF_CONFIG names a cluster of more than one task."""
    return _cluster_size() > 1


def strategy_from_environment() -> tf.distribute.Strategy:
    """The strategy for this process. Call it before any other TensorFlow op: collective ops
    (MultiWorkerMirroredStrategy's all-reduce) can only be configured at program start-up."""
    if is_multi_worker():
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def task() -> tuple[str, int]:
    """This task's type and index (``("worker", 0)`` outside a cluster)."""
    spec = tf_config.read().get("task", {})
    return spec.get("type", "worker"), int(spec.get("index", 0))


def is_chief() -> bool:
    """The task that writes what the pipeline keeps: the chief, or worker 0 where the cluster has no chief."""
    kind, index = task()
    if "chief" in tf_config.read().get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and index == 0


class LostWorker(RuntimeError):
    """A worker of the training cluster stopped answering mid-training; the message is one line."""


def lost_worker(err: Exception) -> LostWorker:
    """What a survivor says when a collective op fails because a peer is gone (TensorFlow aborts
    collectives within seconds of a lost connection, and its health check within a minute)."""
    return LostWorker(
        f"a worker of the training cluster stopped ({type(err).__name__}: {first_line(err)}); start every worker "
        "again: each resumes from the newest checkpoint all of them have"
    )


def agreed_step(distribution: tf.distribute.Strategy, newest: int) -> int:
    """The newest checkpoint step every worker has (-1: one has none, all start afresh).

    A worker killed between checkpoints may have saved one fewer than the others; each keeps two,
    so the smallest of the workers' newest steps is one they all hold."""
    if distribution.num_replicas_in_sync == 1:
        return newest

    @tf.function
    def gather():
        return distribution.run(lambda: tf.distribute.get_replica_context().all_gather(
            tf.constant([newest], tf.int64), axis=0))

    return int(tf.reduce_min(distribution.experimental_local_results(gather())[0]))


def own_path(path: str) -> str:
    """``path`` for the chief; for another worker, a folder of its own in the local temporary directory."""
    if is_chief():
        return path
    kind, index = task()
    return os.path.join(tempfile.gettempdir(), f"clipflow-{kind}-{index}", os.path.basename(path.rstrip("/")))
