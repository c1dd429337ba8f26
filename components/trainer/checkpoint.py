"""Resumable training: periodic checkpoints of the whole training state.

A killed Trainer leaves its execution unfinished; TFX runs a *new*
execution, with new output directories, when the pipeline is re-run. So
checkpoints live outside the execution, under ``checkpoint_root`` in a
folder keyed by everything the training depends on (settings and input
artifacts): the same command finds them, a changed one starts afresh.
A checkpoint holds the model, the optimizer slots, the loop's counters,
stateful clip strategies, the epoch/batch position and the host-side
history the gradient report needs. The folder is removed once training
completes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

LOGDIR_FILE = "logdir.json"


def checkpoint_dir(root: str, custom_config: dict, inputs: List[str]) -> str:
    """``root/<key>``: the key hashes the settings and the input artifacts' locations."""
    text = json.dumps({"config": custom_config, "inputs": sorted(inputs)}, sort_keys=True)
    return os.path.join(root, hashlib.sha256(text.encode()).hexdigest()[:16])


@dataclasses.dataclass
class Restored:
    step: int
    epoch: int
    batch: int  # the next batch to run in ``epoch``
    losses: np.ndarray
    norms: np.ndarray
    logdir: str  # where the interrupted run wrote its TensorBoard logs


class Checkpointer:
    def __init__(self, directory: str, objects: Dict[str, tf.Module], every_n_steps: int):
        self.directory = directory
        self.every = every_n_steps
        self.position = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="epoch_and_batch")
        self.checkpoint = tf.train.Checkpoint(position=self.position, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=1)

    def due(self, previous_step: int, step: int) -> bool:
        """True when a multiple of ``every_n_steps`` lies in (previous_step, step]."""
        return self.every > 0 and step // self.every > previous_step // self.every

    def save(self, step: int, epoch: int, batch: int, losses: np.ndarray, norms: np.ndarray, logdir: str) -> None:
        """History first, then the checkpoint: a checkpoint always has its history."""
        tf.io.gfile.makedirs(self.directory)
        history = io.BytesIO()
        np.savez(history, losses=losses, norms=norms)
        self._write(f"history-{step}.npz", history.getvalue())
        self._write(LOGDIR_FILE, json.dumps({"logdir": logdir}).encode())
        self.position.assign([epoch, batch])
        self.manager.save(checkpoint_number=step)
        for name in tf.io.gfile.listdir(self.directory):
            if name.startswith("history-") and name != f"history-{step}.npz":
                tf.io.gfile.remove(os.path.join(self.directory, name))

    def restore(self) -> Optional[Restored]:
        latest = self.manager.latest_checkpoint
        if latest is None:
            return None
        step = int(re.search(r"ckpt-(\d+)$", latest).group(1))
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        with tf.io.gfile.GFile(os.path.join(self.directory, f"history-{step}.npz"), "rb") as f:
            history = np.load(io.BytesIO(f.read()))
            losses, norms = history["losses"], history["norms"]
        with tf.io.gfile.GFile(os.path.join(self.directory, LOGDIR_FILE)) as f:
            logdir = json.load(f)["logdir"]
        epoch, batch = (int(v) for v in self.position.numpy())
        return Restored(step, epoch, batch, losses, norms, logdir)

    def remove(self) -> None:
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)

    def _write(self, name: str, data: bytes) -> None:
        path = os.path.join(self.directory, name)
        with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
            f.write(data)
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
