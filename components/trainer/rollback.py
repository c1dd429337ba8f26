"""Rollback on divergence (``trainer.on_divergence = "rollback"``): PaLM's recipe, made automatic.

PaLM (arXiv 2204.02311, section 5.1) met loss spikes by restarting from a
checkpoint about 100 steps before the spike and skipping 200-500 batches of
data, by hand. Here the loop's guards say when training has diverged (too
many non-finite or spike steps in a row); training then returns to the
newest checkpoint at least ``rollback_steps_back`` steps before, moves the
data position on by ``rollback_skip_batches`` batches, and goes on, at most
``max_rollbacks`` times.

What returns to the checkpoint: the model, the optimizer (its iteration
count and slots), the clip strategy and guards, the data position. What does
not: the step counter and the counts of what happened (clipped, skipped,
non-finite steps). Steps count every step computed, so TensorBoard shows the
stretch that diverged and the training after the rollback one after the
other, and the rollback in ``rollback/count``.

Every decision depends only on the run's state, so the same command gives
the same model; the checkpoints of the abandoned stretch are deleted and the
state right after a rollback is saved at once, so a run killed at any point
resumes to the model an uninterrupted run trains.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

from components.common.signals import stops_deferred
from components.trainer.checkpoint import Checkpointer, History
from components.trainer.options import TrainerOptions

if TYPE_CHECKING:
    from components.trainer.loop import TrainingLoop

log = logging.getLogger(__name__)

# What a rollback restores from the checkpoint (names of TrainingLoop.checkpoint_objects()).
RESTORED = ("model", "optimizer", "strategy", "halted")


def checkpoints_to_keep(options: TrainerOptions) -> int:
    """Two (one may be damaged), plus those that cover ``rollback_steps_back`` with a rollback."""
    if options.on_divergence != "rollback":
        return 2
    return 2 + -(-options.rollback_steps_back // options.checkpoint_every_n_steps)


class Rollback:
    def __init__(self, options: TrainerOptions, checkpointer: Checkpointer, loop: TrainingLoop,
                 batches_per_epoch: int, name: str):
        self.options, self.checkpointer, self.loop = options, checkpointer, loop
        self.batches_per_epoch, self.name = batches_per_epoch, name

    def after_divergence(self, history: History, logdir: str) -> Optional[tuple[int, int, History]]:
        """Rolls back if it may: the (epoch, batch) to go on from and the history with the rollback
        recorded; None when training is to stop (rollbacks spent, or no checkpoint far enough back)."""
        at_step = int(self.loop.step.numpy()) - 1
        spent, allowed = len(history.rollbacks), self.options.max_rollbacks
        target = self.checkpointer.newest_at_most(at_step - self.options.rollback_steps_back)
        if spent >= allowed or target is None:
            why = (f"trainer.max_rollbacks={allowed} rollbacks spent" if spent >= allowed else
                   f"no checkpoint {self.options.rollback_steps_back} steps before it to return to")
            self._say(f"{self.name}: training diverged at step {at_step}; {why}: stopping")
            return None
        epoch, batch = self.checkpointer.restore_only(target, RESTORED)
        epoch, batch = divmod(epoch * self.batches_per_epoch + batch + self.options.rollback_skip_batches,
                              self.batches_per_epoch)
        history = history.rolled_back(at_step, target, self.options.rollback_skip_batches)
        self.loop.telemetry.record_rollback(int(self.loop.step.numpy()), len(history.rollbacks))
        # The abandoned stretch's checkpoints go, then the state after the rollback is saved, a Ctrl-C or
        # SIGTERM waiting for both. A run killed in between resumes from the target and diverges again
        # exactly so; one killed later, past it.
        with stops_deferred():
            self.checkpointer.forget_after(target)
            self.checkpointer.save(int(self.loop.step.numpy()), epoch, batch, history, logdir)
        self._say(f"{self.name}: training diverged at step {at_step}; rolled back to the checkpoint at step {target} "
                  f"and skipping the next {self.options.rollback_skip_batches} batches "
                  f"(rollback {len(history.rollbacks)} of {allowed})")
        return epoch, batch, history

    @staticmethod
    def _say(line: str) -> None:
        log.warning(line)
        print(line, flush=True)
