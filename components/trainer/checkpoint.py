"""Resumable training: periodic checkpoints of the whole training state.

A killed Trainer leaves its execution unfinished; TFX runs a *new*
execution, with new output directories, when the pipeline is re-run. So
checkpoints live outside the execution, under ``checkpoint_root`` in a
folder keyed by everything the training depends on (settings and input
artifacts): the same command finds them, a changed one starts afresh.
A checkpoint holds the model, the optimizer slots, the loop's counters,
stateful clip strategies, the epoch/batch position and the host-side
history the gradient report needs. The folder is removed once training
completes. A rollback on divergence (components/trainer/rollback.py) returns
to one of them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from components.common.errors import first_line
from components.common.signals import stops_deferred

if TYPE_CHECKING:
    from components.trainer.loop import EpochResult

LOGDIR_FILE = "logdir.json"
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class History:
    """Every step's loss, pre-clip global norm and update norm so far, on the host, and each rollback's
    (diverged at step, returned to step, batches skipped): the gradient report's input, and
    what a checkpoint carries so a resumed run reports on, and rolls back within, the whole of training."""

    losses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    norms: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    updates: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    rollbacks: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3), np.int64))

    def extended(self, result: "EpochResult") -> "History":
        return dataclasses.replace(self, losses=np.concatenate([self.losses, result.losses]),
                                   norms=np.concatenate([self.norms, result.norms]),
                                   updates=np.concatenate([self.updates, result.updates]))

    def rolled_back(self, at_step: int, to_step: int, skipped_batches: int) -> "History":
        return dataclasses.replace(self, rollbacks=np.concatenate([self.rollbacks, [[at_step, to_step, skipped_batches]]]))

    def rollback_records(self) -> List[Dict[str, int]]:
        return [{"at_step": int(a), "to_step": int(t), "skipped_batches": int(k)} for a, t, k in self.rollbacks]

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "History":
        """A saved history; one saved before update norms were kept has them as NaN (not measured)."""
        history = cls(**{key: arrays[key] for key in ("losses", "norms", "updates", "rollbacks") if key in arrays})
        if "updates" not in arrays:
            history = dataclasses.replace(history, updates=np.full(len(history.losses), np.nan, np.float32))
        return history


def _step_of(checkpoint_path: str) -> int:
    return int(re.search(r"ckpt-(\d+)$", checkpoint_path).group(1))


def checkpoint_dir(root: str, custom_config: dict, inputs: List[str]) -> str:
    """``root/<key>``: the key hashes the settings and the input artifacts' locations."""
    text = json.dumps({"config": custom_config, "inputs": sorted(inputs)}, sort_keys=True)
    return os.path.join(root, hashlib.sha256(text.encode()).hexdigest()[:16])


@dataclasses.dataclass
class Restored:
    step: int
    epoch: int
    batch: int  # the next batch to run in ``epoch``
    history: History
    logdir: str  # where the interrupted run wrote its TensorBoard logs


class Checkpointer:
    def __init__(self, directory: str, objects: Dict[str, tf.Module], every_n_steps: int, keep: int = 2):
        """``keep``: at least two, so that when the newest cannot be read (a kill or a full disk
        mid-write) the one before it can; a rollback keeps enough to reach its steps back."""
        self.directory = directory
        self.every = every_n_steps
        self.keep = keep
        self.objects = objects
        self.position = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="epoch_and_batch")
        self.checkpoint = tf.train.Checkpoint(position=self.position, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=keep)

    def due(self, previous_step: int, step: int) -> bool:
        """True when a multiple of ``every_n_steps`` lies in (previous_step, step]."""
        return self.every > 0 and step // self.every > previous_step // self.every

    def save(self, step: int, epoch: int, batch: int, history: History, logdir: str) -> None:
        """History first, then the checkpoint: a checkpoint always has its history. A Ctrl-C or SIGTERM
        waits for the save to end."""
        with stops_deferred():
            tf.io.gfile.makedirs(self.directory)
            arrays = io.BytesIO()
            np.savez(arrays, **dataclasses.asdict(history))
            self._write(f"history-{step}.npz", arrays.getvalue())
            self._write(LOGDIR_FILE, json.dumps({"logdir": logdir}).encode())
            self.position.assign([epoch, batch])
            self.manager.save(checkpoint_number=step)
            kept = {f"history-{_step_of(path)}.npz" for path in self.manager.checkpoints}
            for name in tf.io.gfile.listdir(self.directory):
                if name.startswith("history-") and name not in kept:
                    tf.io.gfile.remove(os.path.join(self.directory, name))

    def newest_step(self) -> int:
        """The step of the newest checkpoint here, -1 if none."""
        return _step_of(self.manager.checkpoints[-1]) if self.manager.checkpoints else -1

    def newest_at_most(self, step: int) -> Optional[int]:
        """The step of the newest checkpoint of step ``step`` or before, None if none."""
        steps = [_step_of(path) for path in self.manager.checkpoints if _step_of(path) <= step]
        return max(steps) if steps else None

    def restore_only(self, step: int, names: Sequence[str]) -> tuple[int, int]:
        """Restores the checkpoint of ``step`` into the objects ``names`` and the position alone (the
        rest keeps its current values); returns its (epoch, batch)."""
        path = next(p for p in self.manager.checkpoints if _step_of(p) == step)
        tf.train.Checkpoint(position=self.position, **{n: self.objects[n] for n in names}).restore(path).expect_partial()
        epoch, batch = (int(v) for v in self.position.numpy())
        return epoch, batch

    def forget_after(self, step: int) -> None:
        """Deletes the checkpoints of steps after ``step`` (with their histories); the others stay as they are."""
        kept = [p for p in self.manager.checkpoints if _step_of(p) <= step]
        for path in self.manager.checkpoints:
            if _step_of(path) > step:
                for name in tf.io.gfile.glob(path + ".*"):
                    tf.io.gfile.remove(name)
                history = os.path.join(self.directory, f"history-{_step_of(path)}.npz")
                if tf.io.gfile.exists(history):
                    tf.io.gfile.remove(history)
        # The manager's state file, as CheckpointManager writes it; a new manager then reads the list back.
        tf.compat.v1.train.update_checkpoint_state(self.directory, kept[-1], all_model_checkpoint_paths=kept)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=self.keep)

    def restore(self, at_most: Optional[int] = None) -> Optional[Restored]:
        """The newest checkpoint that reads whole (of step ``at_most`` or before, where given), or
        None (train afresh). One that does not is named in one line and passed over; each is read
        through before anything is restored, so a damaged one never leaves the model half-loaded."""
        candidates = [p for p in self.manager.checkpoints if at_most is None or _step_of(p) <= at_most]
        for path in reversed(candidates):
            try:
                history, logdir = self._check(path)
            except (tf.errors.OpError, IndexError, ValueError, KeyError, OSError, EOFError) as err:
                older = candidates.index(path) > 0
                message = (f"Trainer: the checkpoint at step {_step_of(path)} cannot be read ({type(err).__name__}: "
                           f"{first_line(err)}); "
                           + ("trying the one before it" if older else "training afresh"))
                log.warning(message)
                print(message, flush=True)
                continue
            self.checkpoint.restore(path).assert_existing_objects_matched()
            epoch, batch = (int(v) for v in self.position.numpy())
            return Restored(_step_of(path), epoch, batch, history, logdir)
        if self.manager.checkpoints:  # none readable: clear them, so none is tried again
            self.remove()
            self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=self.keep)
        return None

    def _check(self, path: str) -> tuple[History, str]:
        """Reads every tensor of the checkpoint, its history and the log dir; raises if any is damaged."""
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
        with tf.io.gfile.GFile(os.path.join(self.directory, f"history-{_step_of(path)}.npz"), "rb") as f:
            with np.load(io.BytesIO(f.read())) as archive:
                history = History.from_arrays({key: archive[key] for key in archive.files})
        with tf.io.gfile.GFile(os.path.join(self.directory, LOGDIR_FILE)) as f:
            return history, json.load(f)["logdir"]

    def remove(self) -> None:
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)

    def _write(self, name: str, data: bytes) -> None:
        path = os.path.join(self.directory, name)
        with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
            f.write(data)
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
