"""The custom training loop: many steps per ``tf.function`` call.

One call runs ``steps_per_call`` steps on batches sliced from a block of
records held in memory (the whole split, or a part streamed from disk:
components/trainer/data.py), so the host is visited once per call, not once
per step. The loop holds a clip strategy and a telemetry writer and knows
neither's details:
the strategy's stats say whether a step applies its update (a non-finite
guard, ``clipping.SkipNonFinite``, says skip) and whether training stops.

Under a ``tf.distribute`` strategy (several workers or GPUs) only the
gradient is computed per replica: each differentiates its share of the
global batch and the shares are summed across replicas *before* the clip
strategy sees them, so the clip runs once, on the gradient one process
would have computed (clipping each replica's share first is a different
algorithm: tensorflow/tensorflow#33929). The clip, the counters and the
telemetry then run in cross-replica context, identical on every worker, and
the optimizer applies the clipped gradient without aggregating it again.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Callable, List, Optional

import numpy as np
import tensorflow as tf

from components.common.typed import pick
from components.trainer.clipping import ClipStrategy
from components.trainer.model import MLP, NUM_CLASSES
from components.trainer.noise_scale import NoiseScale
from components.trainer.report import GradientReport
from components.trainer.telemetry import StepScalars, Telemetry, update_values

if TYPE_CHECKING:
    from components.trainer.checkpoint import History
    from components.trainer.data import Split

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


# loss name -> loss(labels, outputs): cross entropy on logits, or the demo's MSE against one-hot labels.
LOSSES: dict[str, LossFn] = {
    "cross_entropy": lambda labels, logits: tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    ),
    "mse": lambda labels, outputs: tf.reduce_mean(tf.square(tf.one_hot(labels, NUM_CLASSES) - outputs)),
}


def make_loss(name: str) -> LossFn:
    return pick(LOSSES, name, "trainer.loss")


def _record_first(first_step: tf.Variable, happened: tf.Tensor, step: tf.Variable) -> None:
    """``first_step`` := ``step`` the first time ``happened`` (it starts at -1)."""
    first_step.assign(tf.where(tf.logical_and(happened, first_step < 0), step.read_value(), first_step.read_value()))


@dataclasses.dataclass
class EpochResult:
    """Host-side record of one epoch (numpy), for the gradient report."""

    losses: np.ndarray
    norms: np.ndarray  # pre-clip global norm per step
    updates: np.ndarray  # global norm of the update applied per step (0: none; NaN: not measured)
    stopped: bool  # too many consecutive non-finite steps


class TrainingLoop:
    def __init__(
        self,
        model: MLP,
        optimizer,
        loss_fn: LossFn,
        strategy: ClipStrategy,
        telemetry: Optional[Telemetry],
        batch_size: int,
        clip_rate_window: int = 100,
        distribution: Optional[tf.distribute.Strategy] = None,
    ):
        """Create it, the model and the optimizer under ``distribution.scope()`` (default: no distribution)."""
        self.model = model
        self.variables: List[tf.Variable] = model.variables_in_order
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.strategy = strategy
        self.telemetry = telemetry
        self.batch_size = batch_size
        self.distribution = distribution or tf.distribute.get_strategy()
        # The optimizer's slots now, not in the first call: a tf.function whose first trace creates
        # variables traces everything a second time (once allowing variable creation, once forbidding it).
        optimizer._create_all_weights(self.variables)  # noqa: SLF001  (the legacy optimizers have no public build)

        def counter(name: str, init: int = 0) -> tf.Variable:
            return tf.Variable(init, dtype=tf.int64, trainable=False, name=name)

        self.step = counter("step")
        self.clipped_steps = counter("clipped_steps")
        self.nonfinite_steps = counter("nonfinite_steps")
        self.skipped_spikes = counter("skipped_spikes")  # finite steps a spike guard skipped
        self.halted = tf.Variable(False, trainable=False, name="halted")  # the strategy said stop
        self.first_clipped_step = counter("first_clipped_step", -1)
        self.first_nonfinite_step = counter("first_nonfinite_step", -1)
        self.max_pre_clip_norms = tf.Variable(tf.zeros([len(self.variables)]), trainable=False, name="max_norms")
        self.last_finite_norms = tf.Variable(tf.zeros([len(self.variables)]), trainable=False, name="last_norms")
        # Clipped (1) or not (0), for the last clip_rate_window finite steps: a ring indexed by finite-step count.
        self.recent_clipped = tf.Variable(tf.zeros([clip_rate_window]), trainable=False, name="recent_clipped")
        self.update_every = telemetry.options.update_every_n_steps if telemetry is not None else 0
        self.noise = NoiseScale() if telemetry is not None and telemetry.options.noise_scale else None
        # The noise scale's two batch sizes: each worker's share and the whole batch; in one process, its halves.
        self.parts = 2 if self.noise is not None and self.distribution.num_replicas_in_sync == 1 else 1

    def _train_step(self, x: tf.Tensor, y: tf.Tensor, histograms: Optional[tf.Tensor]):
        """One step, traced without autograph: its branches are explicit ``tf.cond``s
        and counter updates are arithmetic (autograph converting this code was
        a large part of every Trainer run's trace, docs/benchmarks.md). ``histograms``:
        a bool tensor, or None where this trace never writes them."""
        learning_rate = self._learning_rate()  # before this step's update moves a schedule on
        loss, grads, (small_sq_sum, small_batches) = self._gradients(x, y)
        clipped, stats = self.strategy.apply(grads, self.variables, loss)
        applied = tf.logical_not(stats.skip)
        finite = tf.math.is_finite(stats.pre_global)
        if self.noise is not None:
            batch = tf.cast(tf.shape(y)[0], tf.float32)
            self.noise.update(small_sq_sum / small_batches, tf.square(stats.pre_global), batch / small_batches, batch,
                              finite)
        updates, measured = self._apply_if(applied, clipped, stats)
        clipped_now = tf.logical_and(applied, stats.scale < 1.0)
        self.clipped_steps.assign_add(tf.cast(clipped_now, tf.int64))
        self.nonfinite_steps.assign_add(tf.cast(tf.logical_not(finite), tf.int64))
        self.skipped_spikes.assign_add(tf.cast(tf.logical_and(stats.skip, finite), tf.int64))
        self.halted.assign(stats.stop)
        _record_first(self.first_clipped_step, clipped_now, self.step)
        _record_first(self.first_nonfinite_step, tf.logical_not(finite), self.step)
        if self.telemetry is not None:
            # The slot of this step if applied: the applied steps before it. Branch-free: a
            # skipped step rewrites a slot with the value already there.
            slot = (self.step - self.skipped_steps()) % self.recent_clipped.shape[0]
            # A whole-array assign, not scatter_nd_update: mirrored variables (under a distribution) have no scatter.
            self.recent_clipped.assign(tf.tensor_scatter_nd_update(
                self.recent_clipped, [[slot]], [tf.where(applied, tf.cast(clipped_now, tf.float32), self.recent_clipped[slot])]
            ))
            scalars = StepScalars()
            self.telemetry.record_step(
                scalars, self.step, loss, learning_rate, stats, self.clipped_steps, self.nonfinite_steps,
                self.skipped_spikes, self.recent_clipped,
            )
            if self.noise is not None:
                self.telemetry.record_noise_scale(scalars, self.noise.value(), tf.shape(y)[0])
            if self.update_every:
                self.telemetry.record_updates(scalars, updates, measured)
            self.telemetry.write_step(scalars, self.step)
            if histograms is not None:
                self.telemetry.record_histograms(
                    self.step, grads, clipped, self.variables, tf.logical_and(histograms, applied)
                )
        self.step.assign_add(1)
        return loss, stats.pre_global, updates[0]  # the update's norm

    def _apply_if(self, applied: tf.Tensor, clipped, stats):
        """Applies the clipped gradient if ``applied``; returns the update's values (``update_values``: its norm
        first, 0 where the step applied none, NaN where it was not measured) and whether it was measured: every
        ``update_every`` steps, since measuring holds a copy of the weights from before the step."""
        unmeasured = np.full(2 + 2 * len(self.variables), np.nan, np.float32)
        skipped = unmeasured.copy()
        if self.update_every:
            skipped[0] = 0.0  # its update is known without measuring: none

        def apply(measure: bool) -> Callable[[], tf.Tensor]:
            def run() -> tf.Tensor:
                before = [v.read_value() for v in self.variables] if measure else None
                self.distribution.run(self._apply, args=(clipped,))
                self.last_finite_norms.assign(stats.pre_norms)
                self.max_pre_clip_norms.assign(tf.maximum(self.max_pre_clip_norms, stats.pre_norms))
                if before is None:
                    return tf.constant(unmeasured)
                # What the optimizer did, whatever it is (Adam's step is not the gradient): the weights' change, in
                # one fused pass per variable (squared_difference; its sum); the weights' own (l2_loss: one pass).
                changes = [tf.reduce_sum(tf.math.squared_difference(v.read_value(), b)) for v, b in zip(self.variables, before)]
                weights = [2.0 * tf.nn.l2_loss(v) for v in self.variables]
                return update_values(tf.sqrt(tf.stack(changes)), tf.sqrt(tf.stack(weights)))
            return run

        if not self.update_every:
            return tf.cond(applied, apply(False), lambda: tf.constant(skipped)), tf.constant(False)
        measured = tf.logical_and(applied, tf.equal(self.step % self.update_every, 0))
        # Skipped, applied, or applied and measured: one three-way branch rather than a branch in a branch.
        values = tf.switch_case(tf.cast(applied, tf.int32) + tf.cast(measured, tf.int32),
                                [lambda: tf.constant(skipped), apply(False), apply(True)])
        return values, measured

    def skipped_steps(self) -> tf.Tensor:
        """Steps that applied no update: non-finite ones and spikes."""
        return self.nonfinite_steps + self.skipped_spikes

    def _replica_gradients(self, x: tf.Tensor, y: tf.Tensor):
        """In a replica: its share of the batch's mean loss and that share's gradients (summed over its
        ``parts``, each differentiated apart: the same work as one pass); and, for the noise scale, the sum
        over its non-empty parts of their own mean gradients' squared norms, and their count."""
        context = tf.distribute.get_replica_context()
        share = -(-tf.shape(y)[0] // context.num_replicas_in_sync)
        start = share * context.replica_id_in_sync_group
        xs, ys = x[start : start + share], y[start : start + share]
        size = -(-tf.shape(ys)[0] // self.parts)
        parts = [(xs, ys)] if self.parts == 1 else [(xs[i * size : (i + 1) * size], ys[i * size : (i + 1) * size])
                                                    for i in range(self.parts)]
        losses, part_grads, small_sq_sum, small_batches = [], [], 0.0, 0.0
        for xp, yp in parts:
            weight = tf.cast(tf.shape(yp)[0], tf.float32) / tf.cast(tf.shape(y)[0], tf.float32)  # 1: one replica, part
            with tf.GradientTape() as tape:
                losses.append(tf.where(weight > 0, self.loss_fn(yp, self.model(xp)), 0.0) * weight)
            part_grads.append(tape.gradient(losses[-1], self.variables))
            if self.noise is not None:  # the part's own mean gradient is its gradient / weight
                squared = tf.add_n([tf.reduce_sum(tf.square(g)) for g in part_grads[-1]]) / tf.maximum(weight, 1e-12) ** 2
                small_sq_sum += tf.where(weight > 0, squared, 0.0)
                small_batches += tf.cast(weight > 0, tf.float32)
        if self.parts == 1:  # the default: no sums to form on the training step
            return losses[0], part_grads[0], small_sq_sum, small_batches
        return tf.add_n(losses), [tf.add_n(list(g)) for g in zip(*part_grads)], small_sq_sum, small_batches

    def _all_reduced_gradients(self, x: tf.Tensor, y: tf.Tensor):
        """In a replica: the whole batch's loss and gradients, the replicas' shares summed (what the clip sees),
        and the noise scale's small-batch sums."""
        loss, grads, small_sq_sum, small_batches = self._replica_gradients(x, y)
        values = [loss, *grads] + ([small_sq_sum, small_batches] if self.noise is not None else [])
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)

    def _gradients(self, x: tf.Tensor, y: tf.Tensor):
        """The batch's mean loss and its gradients, the same on every replica, as plain tensors; and the noise
        scale's (sum of the small batches' squared gradient norms, their count), (0, 1) without it."""
        values = self.distribution.experimental_local_results(
            self.distribution.run(self._all_reduced_gradients, args=(x, y))
        )[0]
        count = len(self.variables)
        small = tuple(values[count + 1 :]) if self.noise is not None else (0.0, 1.0)
        return values[0], list(values[1 : count + 1]), small

    def _apply(self, clipped) -> None:
        """In a replica: the clipped gradient, already summed across replicas, applied as it is."""
        self.optimizer.apply_gradients(zip(clipped, self.variables), experimental_aggregate_gradients=False)

    def _learning_rate(self) -> tf.Tensor:
        """The rate this step applies: a schedule's value at the optimizer's update count."""
        rate = self.optimizer.learning_rate
        return rate(self.optimizer.iterations) if callable(rate) else rate

    def _batch(self, images: tf.Tensor, labels: tf.Tensor, index: tf.Tensor):
        start = index * self.batch_size
        return images[start : start + self.batch_size], labels[start : start + self.batch_size]

    # reduce_retracing: blocks streamed from disk differ in length; one trace then serves any length
    # (each new shape would otherwise trace the whole step again: seconds, and memory kept per trace).
    @tf.function(autograph=False, reduce_retracing=True)
    def run_steps(
        self, images: tf.Tensor, labels: tf.Tensor, first: tf.Tensor, count: tf.Tensor, histograms: tf.Tensor,
    ):
        """Runs batches ``first .. first+count-1`` of a (shuffled) block; returns their losses and norms.

        The first step is peeled out of the loop: it is the only one that may
        write histograms, so the one branch on ``histograms`` (a bool tensor:
        one trace serves both cases) runs once per call, not once per step.
        The loop ends early once the strategy says stop (too many non-finite
        steps in a row).
        """
        with self.telemetry.writing_steps() if self.telemetry is not None else contextlib.nullcontext():
            values = self._train_step(*self._batch(images, labels, first), histograms)  # loss, norm, update norm
            records = [tf.TensorArray(tf.float32, size=0, dynamic_size=True).write(0, value) for value in values]

            def more(i, *_records):
                return tf.logical_and(i < count, tf.logical_not(self.halted))

            def step(i, *records):
                values = self._train_step(*self._batch(images, labels, first + i), None)
                return (i + 1, *(record.write(i, value) for record, value in zip(records, values)))

            _, *records = tf.while_loop(more, step, (tf.constant(1), *records))
        return tuple(record.stack() for record in records)

    def _next_call(self, remaining: int, steps_per_call: int) -> tuple[int, bool]:
        """How many steps the next call runs, and whether it starts with histograms."""
        count = min(steps_per_call, remaining)
        if self.telemetry is None:
            return count, False
        step = int(self.step.numpy())
        due = self.telemetry.steps_until_histograms(step)
        if due is None:
            return count, False
        if due == 0:  # histograms now; stop before the next due step
            return min(count, self.telemetry.steps_until_histograms(step + 1) + 1), True
        return min(count, due), False

    def run_epoch(
        self, split: Split, steps_per_call: int, seed: int, first_batch: int = 0,
        after_call: Optional[Callable[[int, EpochResult], None]] = None,
    ) -> EpochResult:
        """One pass over the data in an order fixed by ``seed`` (so a resumed epoch
        sees the same batches), from batch ``first_batch``; the last batch may be
        smaller. ``after_call(next_batch, so_far)`` runs on the host after each call."""
        result = EpochResult(*(np.zeros(0, np.float32),) * 3, False)
        block_start = 0  # the epoch's index of the block's first batch: blocks hold whole batches
        for images, labels in split.epoch(seed, self.batch_size):
            num_batches = -(-int(images.shape[0]) // self.batch_size)
            first = max(first_batch - block_start, 0)
            while first < num_batches and not self.stopped:
                count, histograms = self._next_call(num_batches - first, steps_per_call)
                loss, norm, update = self.run_steps(images, labels, tf.constant(first), tf.constant(count),
                                                    tf.constant(histograms))
                result = EpochResult(
                    np.concatenate([result.losses, loss.numpy()]), np.concatenate([result.norms, norm.numpy()]),
                    np.concatenate([result.updates, update.numpy()]), self.stopped,
                )
                first += len(loss)
                if after_call is not None:
                    after_call(block_start + first, result)
            if self.stopped:
                break
            block_start += num_batches
        return result

    def gradient_report(self, history: History, eval_accuracy: float, resumed_from_step: Optional[int]) -> GradientReport:
        """The report on training so far: the host-side history of every step, and the counters this loop kept."""
        return GradientReport.build(
            pre_clip_norms=history.norms,
            losses=history.losses,
            update_norms=history.updates,
            update_every_n_steps=self.update_every,
            clipped_steps=int(self.clipped_steps.numpy()),
            nonfinite_steps=int(self.nonfinite_steps.numpy()),
            first_clipped_step=int(self.first_clipped_step.numpy()),
            variable_names=self.model.variable_names,
            max_variable_norms=self.max_pre_clip_norms.numpy(),
            first_nonfinite_step=int(self.first_nonfinite_step.numpy()),
            diverged_at_step=int(self.step.numpy()) - 1 if self.stopped else None,
            last_finite_norms=self.last_finite_norms.numpy(),
            eval_accuracy=eval_accuracy,
            resumed_from_step=resumed_from_step,
            skipped_spikes=int(self.skipped_spikes.numpy()),
            rollbacks=history.rollback_records(),
            noise_scale=float(self.noise.value().numpy()) if self.noise is not None else None,
            batch_size=self.batch_size,
        )

    def checkpoint_objects(self) -> dict:
        """Everything whose state a resumed run needs, for tf.train.Checkpoint."""
        objects = {
            "model": self.model, "optimizer": self.optimizer, "step": self.step,
            "clipped_steps": self.clipped_steps, "nonfinite_steps": self.nonfinite_steps,
            "skipped_spikes": self.skipped_spikes,
            "halted": self.halted, "first_clipped_step": self.first_clipped_step,
            "first_nonfinite_step": self.first_nonfinite_step, "max_pre_clip_norms": self.max_pre_clip_norms,
            "last_finite_norms": self.last_finite_norms, "recent_clipped": self.recent_clipped,
        }
        if isinstance(self.strategy, tf.Module):  # a strategy with state (the non-finite guard, percentile)
            objects["strategy"] = self.strategy
        if self.noise is not None:
            objects["noise_scale"] = self.noise
        return objects

    @property
    def stopped(self) -> bool:
        return bool(self.halted.numpy())

    @tf.function(autograph=False, reduce_retracing=True)
    def _eval_batch(self, x: tf.Tensor, y: tf.Tensor):
        outputs = self.model(x)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(outputs, axis=1), y), tf.float32))
        return self.loss_fn(y, outputs) * tf.cast(tf.shape(y)[0], tf.float32), correct

    def evaluate(self, split: Split, batch_size: int = 2000) -> dict:
        """Mean loss and accuracy over a whole split."""
        total_loss = total_correct = 0.0
        for images, labels in split.blocks():
            for start in range(0, int(images.shape[0]), batch_size):
                loss, correct = self._eval_batch(images[start : start + batch_size], labels[start : start + batch_size])
                total_loss += float(loss)
                total_correct += float(correct)
        return {"loss": total_loss / split.size, "accuracy": total_correct / split.size}
