"""In-graph TensorBoard telemetry of what clipping did, step by step.

Everything written here is already computed by the step (loss) or by the clip
strategy (norms, scale): telemetry only writes. Summaries are ops inside the
training ``tf.function``, so telemetry adds no host round trip. Non-finite
steps write no norms or histograms (a single NaN makes TensorBoard draw the
whole series wrongly); they are counted in ``nonfinite/steps`` instead.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from components.trainer.clipping import ClipStats
from components.trainer.options import TelemetryOptions

TRAIN_RUN = "train"
EVAL_RUN = "eval"


class Telemetry:
    def __init__(self, logdir: str, variable_names: Sequence[str], options: TelemetryOptions):
        self.writer = tf.summary.create_file_writer(f"{logdir}/{TRAIN_RUN}")
        self.eval_writer = tf.summary.create_file_writer(f"{logdir}/{EVAL_RUN}")
        self.names = list(variable_names)
        self.options = options

    def record_step(
        self,
        step: tf.Tensor,
        loss: tf.Tensor,
        learning_rate: tf.Tensor,
        stats: ClipStats,
        finite: tf.Tensor,
        clipped_fraction: tf.Tensor,
        nonfinite_steps: tf.Tensor,
    ) -> None:
        """Per-step scalars (call inside the training tf.function)."""
        if not self.options.scalars:
            return
        with self.writer.as_default(step=step):
            tf.summary.scalar("nonfinite/steps", nonfinite_steps)
            tf.summary.scalar("learning_rate", learning_rate)
            with tf.summary.record_if(finite):
                tf.summary.scalar("loss", loss)
                tf.summary.scalar("grad_norm/pre_clip", stats.pre_global)
                tf.summary.scalar("grad_norm/post_clip", stats.post_global)
                tf.summary.scalar("clip/scale", stats.scale)
                tf.summary.scalar("clip/clipped", tf.cast(stats.scale < 1.0, tf.float32))
                tf.summary.scalar("clip/clipped_fraction", clipped_fraction)
                if tf.math.is_finite(stats.threshold):
                    tf.summary.scalar("clip/threshold", stats.threshold)
                for i, name in enumerate(self.names):
                    tf.summary.scalar(f"grad_norm/pre_clip/{name}", stats.pre_norms[i])
                    tf.summary.scalar(f"grad_norm/post_clip/{name}", stats.post_norms[i])

    def record_histograms(
        self,
        step: tf.Tensor,
        grads: Sequence[tf.Tensor],
        clipped: Sequence[tf.Tensor],
        variables: Sequence[tf.Variable],
        finite: tf.Tensor,
    ) -> None:
        """Gradient (pre and post clip) and weight histograms every N steps."""
        every = self.options.histogram_every_n_steps
        if not every:
            return
        with self.writer.as_default(step=step), tf.summary.record_if(
            tf.logical_and(finite, tf.equal(step % every, 0))
        ):
            for name, grad, post, var in zip(self.names, grads, clipped, variables):
                tf.summary.histogram(f"grad_hist/pre_clip/{name}", grad)
                tf.summary.histogram(f"grad_hist/post_clip/{name}", post)
                tf.summary.histogram(f"weights/{name}", var)

    def record_eval(self, step: int, metrics: dict) -> None:
        """Eval metrics as their own TensorBoard run, next to ``train``."""
        with self.eval_writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)

    def flush(self) -> None:
        self.writer.flush()
        self.eval_writer.flush()
