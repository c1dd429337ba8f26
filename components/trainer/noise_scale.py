"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, arXiv 1812.06162, App. A.1).

The batch size around which larger batches stop paying off: below it, doubling the batch nearly halves
the steps needed; far above it, it barely helps. Sigma is the per-example gradient covariance, G the
true gradient; neither is seen directly. A gradient averaged over B examples has
E|G_B|^2 = |G|^2 + tr(Sigma) / B, so two batch sizes give unbiased estimates of both:

    |G|^2    ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / B_small - 1 / B_big)

Each step's estimates are noisy (the first can be negative), so, as the paper does, each is smoothed
by an EMA before their ratio is taken. The two batch sizes come free of extra backward passes: under
MultiWorkerMirroredStrategy a worker's share (before the all-reduce) and the global batch (after it);
in one process the batch's two halves, differentiated apart and summed (components/trainer/loop.py).
"""
from __future__ import annotations

import tensorflow as tf

# EMA decay of both estimates: a memory of ~100 steps. Both start at 0 and decay alike, so their ratio
# needs no bias correction (Adam's would cancel).
DECAY = 0.99


def two_batch_estimates(small_sq: tf.Tensor, big_sq: tf.Tensor, b_small: tf.Tensor, b_big: tf.Tensor):
    """Unbiased one-step estimates of (|G|^2, tr(Sigma)) from the squared norms of gradients averaged over
    ``b_small`` and ``b_big`` examples (``small_sq`` may itself be a mean over several small batches)."""
    g2 = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace = (small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big)
    return g2, trace


class NoiseScale(tf.Module):
    """The EMAs of both estimates (checkpointed with the loop: a resumed run continues them exactly)."""

    def __init__(self):
        super().__init__(name="noise_scale")
        self.g2 = tf.Variable(0.0, trainable=False, name="g2_ema")
        self.trace = tf.Variable(0.0, trainable=False, name="trace_ema")
        self.count = tf.Variable(0.0, trainable=False, name="count")

    def update(self, small_sq, big_sq, b_small, b_big, finite: tf.Tensor) -> None:
        """One step's estimates into the EMAs, where ``finite`` (a non-finite gradient says nothing)."""
        g2, trace = two_batch_estimates(small_sq, big_sq, b_small, b_big)
        keep = tf.logical_and(finite, tf.math.is_finite(g2 + trace))
        for ema, value in ((self.g2, g2), (self.trace, trace)):
            ema.assign(tf.where(keep, DECAY * ema + (1.0 - DECAY) * value, ema))
        self.count.assign_add(tf.cast(keep, tf.float32))

    def value(self) -> tf.Tensor:
        """B_simple from the EMAs; NaN before any step, or while |G|^2's estimate is not positive."""
        known = tf.logical_and(self.count > 0, self.g2 > 0)
        return tf.where(known, self.trace / tf.maximum(self.g2, 1e-30), float("nan"))
