"""Clip strategies: small objects with one job, ``apply(grads) -> (clipped, stats)``.

The training step holds one strategy and never asks which. Each strategy
measures the pre-clip norms once and derives the post-clip norms from its own
arithmetic where it can (a global-norm clip scales every norm by the same
factor), so telemetry reads ``stats`` and recomputes nothing.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, NamedTuple, Protocol, Sequence, Tuple

import tensorflow as tf

from components.trainer.options import ClipOptions

Grads = List[tf.Tensor]


class ClipStats(NamedTuple):
    """What one step's clipping did; all tensors, computed in-graph.

    A NamedTuple so it can cross ``tf.function`` boundaries as a nest.
    """

    pre_norms: tf.Tensor  # float32[V]: each variable's gradient norm before clipping
    pre_global: tf.Tensor  # float32[]: global norm before clipping
    post_norms: tf.Tensor  # float32[V]
    post_global: tf.Tensor  # float32[]
    scale: tf.Tensor  # post_global / pre_global (1 when untouched)
    threshold: tf.Tensor  # the norm bound in force (inf where none applies)


class ClipStrategy(Protocol):
    def apply(self, grads: Sequence[tf.Tensor]) -> Tuple[Grads, ClipStats]: ...


def measure(grads: Sequence[tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
    """Per-variable L2 norms and the global norm (the norm of those norms)."""
    per_var = tf.stack([tf.norm(g) for g in grads])
    return per_var, tf.norm(per_var)


def _ratio(post: tf.Tensor, pre: tf.Tensor) -> tf.Tensor:
    return tf.where(pre > 0, post / tf.where(pre > 0, pre, 1.0), 1.0)


_INF = tf.constant(math.inf)


class NoClip:
    """Leaves gradients alone; still reports their norms."""

    def apply(self, grads):
        norms, global_norm = measure(grads)
        return list(grads), ClipStats(norms, global_norm, norms, global_norm, tf.ones([]), _INF)


@dataclasses.dataclass
class ClipByValue:
    """Keras ``clipvalue``: each element into [lo, hi] (``tf.clip_by_value``)."""

    lo: float
    hi: float

    def apply(self, grads):
        pre_norms, pre_global = measure(grads)
        clipped = [tf.clip_by_value(g, self.lo, self.hi) for g in grads]
        post_norms, post_global = measure(clipped)  # element clipping changes norms unevenly
        stats = ClipStats(pre_norms, pre_global, post_norms, post_global, _ratio(post_global, pre_global), _INF)
        return clipped, stats


@dataclasses.dataclass
class ClipByNorm:
    """Keras ``clipnorm``: each tensor rescaled to norm <= threshold, direction kept.

    Same result as ``tf.clip_by_norm`` per tensor, from the norms already measured.
    """

    threshold: float

    def apply(self, grads):
        pre_norms, pre_global = measure(grads)
        scales = self.threshold / tf.maximum(pre_norms, self.threshold)
        clipped = [g * scales[i] for i, g in enumerate(grads)]
        post_norms = pre_norms * scales
        post_global = tf.norm(post_norms)
        threshold = tf.constant(self.threshold)
        return clipped, ClipStats(pre_norms, pre_global, post_norms, post_global, _ratio(post_global, pre_global), threshold)


def _clip_global(grads, pre_norms, pre_global, threshold: tf.Tensor) -> Tuple[Grads, ClipStats]:
    clipped, _ = tf.clip_by_global_norm(grads, threshold, use_norm=pre_global)
    scale = threshold / tf.maximum(pre_global, threshold)  # the factor tf.clip_by_global_norm applied
    return clipped, ClipStats(pre_norms, pre_global, pre_norms * scale, pre_global * scale, scale, threshold)


@dataclasses.dataclass
class ClipByGlobalNorm:
    """Keras ``global_clipnorm``: one factor ``c / max(norm, c)`` for all tensors."""

    threshold: float

    def apply(self, grads):
        pre_norms, pre_global = measure(grads)
        return _clip_global(grads, pre_norms, pre_global, tf.constant(self.threshold))


class AdaptiveClip(tf.Module):
    """AutoClip-style: a global-norm clip at a percentile of recent finite norms.

    The current step's norm joins the history first, so the first step is
    never clipped and the threshold follows the run's own scale. A tf.Module
    so checkpoints carry its history.
    """

    def __init__(self, percentile: float, window: int):
        super().__init__(name="adaptive_clip")
        self.percentile = percentile
        self.window = window
        self.history = tf.Variable(tf.zeros([window]), trainable=False, name="clip_history")
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="clip_history_count")

    def threshold_now(self) -> tf.Tensor:
        n = tf.minimum(self.count, self.window)
        ordered = tf.sort(self.history[:n])
        rank = tf.cast(tf.math.ceil(self.percentile / 100.0 * tf.cast(n, tf.float32)), tf.int64) - 1
        return tf.cond(n > 0, lambda: ordered[tf.clip_by_value(rank, 0, n - 1)], lambda: _INF)

    def apply(self, grads):
        pre_norms, pre_global = measure(grads)
        # Branch-free (the training step is traced without autograph): a
        # non-finite norm rewrites its slot with the value already there.
        finite = tf.math.is_finite(pre_global)
        slot = self.count % self.window
        self.history.scatter_nd_update([[slot]], [tf.where(finite, pre_global, self.history[slot])])
        self.count.assign_add(tf.cast(finite, tf.int64))
        return _clip_global(grads, pre_norms, pre_global, self.threshold_now())


def make_strategy(options: ClipOptions) -> ClipStrategy:
    """The strategy named in the config (create it outside any tf.function)."""
    if options.strategy == "none":
        return NoClip()
    if options.strategy == "value":
        return ClipByValue(options.lo, options.hi)
    if options.strategy == "norm":
        return ClipByNorm(options.threshold)
    if options.strategy == "global_norm":
        return ClipByGlobalNorm(options.threshold)
    return AdaptiveClip(options.percentile, options.window)
