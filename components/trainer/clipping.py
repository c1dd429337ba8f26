"""Clip strategies, optax-style: small objects with one job that compose.

Each strategy is ``apply(grads, params) -> (clipped, stats)``. The training
step holds one strategy and never asks which. Each strategy measures the
pre-clip norms once and derives the post-clip norms from its own arithmetic
where it can (a global-norm clip scales every norm by the same factor), so
telemetry reads ``stats`` and recomputes nothing. ``SkipNonFinite`` wraps any
strategy, as optax's ``apply_if_finite`` wraps any transform: the training
step then applies, skips or stops on what the stats say.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, List, NamedTuple, Protocol, Sequence, Tuple

import tensorflow as tf

from components.common.typed import pick
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
    skip: tf.Tensor  # bool[]: apply no update this step (a guard found the gradient non-finite)
    stop: tf.Tensor  # bool[]: a guard has seen too many non-finite steps in a row; training ends

    @classmethod
    def of(cls, pre_norms, pre_global, post_norms, post_global, scale, threshold=None) -> "ClipStats":
        """A bare strategy's stats: it never asks to skip or stop (``SkipNonFinite`` does). Constants are
        made here, not at import: a TensorFlow op at import would start the runtime before a distribution
        strategy can configure it (components/trainer/distribute.py)."""
        threshold = tf.constant(math.inf) if threshold is None else threshold
        return cls(pre_norms, pre_global, post_norms, post_global, scale, threshold, tf.constant(False), tf.constant(False))


class ClipStrategy(Protocol):
    def apply(self, grads: Sequence[tf.Tensor], params: Sequence[tf.Variable]) -> Tuple[Grads, ClipStats]: ...


def measure(grads: Sequence[tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
    """Per-variable L2 norms and the global norm (the norm of those norms)."""
    per_var = tf.stack([tf.norm(g) for g in grads])
    return per_var, tf.norm(per_var)


def _ratio(post: tf.Tensor, pre: tf.Tensor) -> tf.Tensor:
    return tf.where(pre > 0, post / tf.where(pre > 0, pre, 1.0), 1.0)


def _remeasured(grads, clipped) -> Tuple[Grads, ClipStats]:
    """Stats of a clip that changes norms unevenly: both sides measured."""
    pre_norms, pre_global = measure(grads)
    post_norms, post_global = measure(clipped)
    return clipped, ClipStats.of(pre_norms, pre_global, post_norms, post_global, _ratio(post_global, pre_global))


class NoClip:
    """Leaves gradients alone; still reports their norms."""

    def apply(self, grads, params):
        norms, global_norm = measure(grads)
        return list(grads), ClipStats.of(norms, global_norm, norms, global_norm, tf.ones([]))


@dataclasses.dataclass
class ClipByValue:
    """Keras ``clipvalue``: each element into [lo, hi] (``tf.clip_by_value``)."""

    lo: float
    hi: float

    def apply(self, grads, params):
        return _remeasured(grads, [tf.clip_by_value(g, self.lo, self.hi) for g in grads])


@dataclasses.dataclass
class ClipByNorm:
    """Keras ``clipnorm``: each tensor rescaled to norm <= threshold, direction kept.

    Same result as ``tf.clip_by_norm`` per tensor, from the norms already measured.
    """

    threshold: float

    def apply(self, grads, params):
        pre_norms, pre_global = measure(grads)
        scales = self.threshold / tf.maximum(pre_norms, self.threshold)
        clipped = [g * scales[i] for i, g in enumerate(grads)]
        post_norms = pre_norms * scales
        post_global = tf.norm(post_norms)
        threshold = tf.constant(self.threshold)
        return clipped, ClipStats.of(pre_norms, pre_global, post_norms, post_global, _ratio(post_global, pre_global), threshold)


def _clip_global(grads, pre_norms, pre_global, threshold: tf.Tensor) -> Tuple[Grads, ClipStats]:
    clipped, _ = tf.clip_by_global_norm(grads, threshold, use_norm=pre_global)
    scale = threshold / tf.maximum(pre_global, threshold)  # the factor tf.clip_by_global_norm applied
    return clipped, ClipStats.of(pre_norms, pre_global, pre_norms * scale, pre_global * scale, scale, threshold)


@dataclasses.dataclass
class ClipByGlobalNorm:
    """Keras ``global_clipnorm``: one factor ``c / max(norm, c)`` for all tensors."""

    threshold: float

    def apply(self, grads, params):
        pre_norms, pre_global = measure(grads)
        return _clip_global(grads, pre_norms, pre_global, tf.constant(self.threshold))


class PercentileClip(tf.Module):
    """AutoClip (Seetharaman et al. 2020, "AutoClip: Adaptive Gradient Clipping
    for Source Separation Networks"): a global-norm clip at a percentile of the
    run's recent finite gradient norms.

    The current step's norm joins the history first, so the first step is
    never clipped and the threshold follows the run's own scale. A tf.Module
    so checkpoints carry its history.
    """

    def __init__(self, percentile: float, window: int):
        super().__init__(name="percentile_clip")
        self.percentile = percentile
        self.window = window
        self.history = tf.Variable(tf.zeros([window]), trainable=False, name="clip_history")
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="clip_history_count")

    def threshold_now(self) -> tf.Tensor:
        n = tf.minimum(self.count, self.window)
        ordered = tf.sort(self.history[:n])
        rank = tf.cast(tf.math.ceil(self.percentile / 100.0 * tf.cast(n, tf.float32)), tf.int64) - 1
        return tf.cond(n > 0, lambda: ordered[tf.clip_by_value(rank, 0, n - 1)], lambda: tf.constant(math.inf))

    def apply(self, grads, params):
        pre_norms, pre_global = measure(grads)
        # Branch-free (the training step is traced without autograph): a
        # non-finite norm rewrites its slot with the value already there.
        finite = tf.math.is_finite(pre_global)
        slot = self.count % self.window
        # A whole-array assign: mirrored variables (under a distribution) have no scatter_nd_update.
        kept = tf.where(finite, pre_global, self.history[slot])
        self.history.assign(tf.tensor_scatter_nd_update(self.history, [[slot]], [kept]))
        self.count.assign_add(tf.cast(finite, tf.int64))
        return _clip_global(grads, pre_norms, pre_global, self.threshold_now())


def unitwise_norm(x: tf.Tensor) -> tf.Tensor:
    """The norm of each unit, broadcast to ``x``'s shape: a dense kernel's units are its
    output columns (norm over the input axis), a vector's are its elements (optax's ``unitwise_norm``)."""
    if x.shape.rank <= 1:
        return tf.abs(x)
    squares = tf.reduce_sum(tf.square(x), axis=list(range(x.shape.rank - 1)), keepdims=True)
    return tf.broadcast_to(tf.sqrt(squares), tf.shape(x))


@dataclasses.dataclass
class UnitwiseAdaptiveClip:
    """AGC (Brock et al. 2021, "High-Performance Large-Scale Image Recognition
    Without Normalization", NFNets; optax's ``adaptive_grad_clip``): each unit's
    gradient is rescaled so that ``|G_i| / max(|W_i|, eps) <= ratio``.

    The bound follows each weight's own size, so no single norm threshold
    applies: ``threshold`` is reported as inf, like value clipping.
    """

    ratio: float
    eps: float

    def apply(self, grads, params):
        clipped = []
        for g, w in zip(grads, params):
            g_norm = unitwise_norm(g)
            max_norm = tf.maximum(unitwise_norm(w), self.eps) * self.ratio
            clipped.append(tf.where(g_norm > max_norm, g * (max_norm / tf.maximum(g_norm, 1e-6)), g))
        return _remeasured(grads, clipped)


class SkipNonFinite(tf.Module):
    """Wraps any strategy, as optax's ``apply_if_finite``: a step whose gradient norm is
    NaN/Inf says ``skip`` (the step applies no update), and after ``max_in_a_row`` such
    steps in a row says ``stop``. A tf.Module: checkpoints carry the count."""

    def __init__(self, inner: ClipStrategy, max_in_a_row: int):
        super().__init__(name="skip_nonfinite")
        self.inner = inner
        self.max_in_a_row = max_in_a_row
        self.in_a_row = tf.Variable(0, dtype=tf.int64, trainable=False, name="nonfinite_in_a_row")

    def apply(self, grads, params):
        clipped, stats = self.inner.apply(grads, params)
        finite = tf.math.is_finite(stats.pre_global)
        self.in_a_row.assign(tf.where(finite, tf.constant(0, tf.int64), self.in_a_row + 1))
        return clipped, stats._replace(skip=tf.logical_not(finite), stop=self.in_a_row >= self.max_in_a_row)


# Strategy name -> its constructor from the options (the names ClipOptions accepts: options.STRATEGY_SETTINGS).
STRATEGIES: Dict[str, Callable[[ClipOptions], ClipStrategy]] = {
    "none": lambda o: NoClip(),
    "value": lambda o: ClipByValue(o.lo, o.hi),
    "norm": lambda o: ClipByNorm(o.threshold),
    "global_norm": lambda o: ClipByGlobalNorm(o.threshold),
    "percentile": lambda o: PercentileClip(o.percentile, o.window),
    "agc": lambda o: UnitwiseAdaptiveClip(o.ratio, o.eps),
}


def make_strategy(options: ClipOptions) -> SkipNonFinite:
    """The strategy the config names, inside the non-finite guard (create it outside any tf.function)."""
    return SkipNonFinite(pick(STRATEGIES, options.strategy, "clip.strategy")(options), options.max_consecutive_nonfinite)
