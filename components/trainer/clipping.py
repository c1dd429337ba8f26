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
from typing import List, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

import tensorflow as tf

from components.trainer.options import STRATEGIES, ClipOptions, check_strategy

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
    threshold: tf.Tensor  # the norm bound in force (inf where none applies; a norm above it is clipped)
    skip: tf.Tensor  # bool[]: apply no update this step (a guard found the gradient non-finite, or a spike)
    stop: tf.Tensor  # bool[]: a guard has seen too many skipped steps in a row; training ends
    # What a strategy or guard measured beyond the above, by name (ZClip's z-score and EMAs): scalars
    # that telemetry writes under clip/<name> as they are.
    extra: Mapping[str, tf.Tensor]

    @classmethod
    def of(cls, pre_norms, pre_global, post_norms, post_global, scale, threshold=None) -> "ClipStats":
        """A bare strategy's stats: it never asks to skip or stop (``SkipNonFinite`` does). Constants are
        made here, not at import: a TensorFlow op at import would start the runtime before a distribution
        strategy can configure it (components/trainer/distribute.py)."""
        threshold = tf.constant(math.inf) if threshold is None else threshold
        return cls(pre_norms, pre_global, post_norms, post_global, scale, threshold, tf.constant(False),
                   tf.constant(False), {})


class ClipStrategy(Protocol):
    """``loss``: the step's loss, for guards that judge it (``SkipOnSpike``); a strategy ignores it,
    as optax's transforms ignore extra arguments they do not use."""

    def apply(
        self, grads: Sequence[tf.Tensor], params: Sequence[tf.Variable], loss: Optional[tf.Tensor] = None,
    ) -> Tuple[Grads, ClipStats]: ...


def measure(grads: Sequence[tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
    """Per-variable L2 norms and the global norm (the norm of those norms). ``l2_loss`` (half the sum of
    squares) reads a gradient once; ``tf.norm`` writes its squares and reads them again, and on a large
    kernel those passes over memory cost more than the arithmetic (docs/benchmarks.md)."""
    per_var = tf.stack([tf.sqrt(2.0 * tf.nn.l2_loss(g)) for g in grads])
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

    def apply(self, grads, params, loss=None):
        norms, global_norm = measure(grads)
        return list(grads), ClipStats.of(norms, global_norm, norms, global_norm, tf.ones([]))


@dataclasses.dataclass
class ClipByValue:
    """Keras ``clipvalue``: each element into [lo, hi] (``tf.clip_by_value``)."""

    lo: float
    hi: float

    def apply(self, grads, params, loss=None):
        return _remeasured(grads, [tf.clip_by_value(g, self.lo, self.hi) for g in grads])


@dataclasses.dataclass
class ClipByNorm:
    """Keras ``clipnorm``: each tensor rescaled to norm <= threshold, direction kept.

    Same result as ``tf.clip_by_norm`` per tensor, from the norms already measured.
    """

    threshold: float

    def apply(self, grads, params, loss=None):
        pre_norms, pre_global = measure(grads)
        scales = self.threshold / tf.maximum(pre_norms, self.threshold)
        clipped = [g * scales[i] for i, g in enumerate(grads)]
        post_norms = pre_norms * scales
        post_global = tf.norm(post_norms)
        threshold = tf.constant(self.threshold)
        return clipped, ClipStats.of(pre_norms, pre_global, post_norms, post_global, _ratio(post_global, pre_global), threshold)


def _clip_global(grads, pre_norms, pre_global, threshold: tf.Tensor) -> Tuple[Grads, ClipStats]:
    """``tf.clip_by_global_norm``'s one factor, written out so that an infinite threshold (an adaptive
    strategy that does not clip this step) means 1, where ``inf / inf`` would be NaN."""
    scale = tf.where(pre_global > threshold, threshold / pre_global, 1.0)
    # A step under the threshold passes its gradient on as it is: no pass over memory to multiply by 1.
    clipped = tf.cond(scale < 1.0, lambda: [g * scale for g in grads], lambda: list(grads))
    return clipped, ClipStats.of(pre_norms, pre_global, pre_norms * scale, pre_global * scale, scale, threshold)


@dataclasses.dataclass
class ClipByGlobalNorm:
    """Keras ``global_clipnorm``: one factor ``c / max(norm, c)`` for all tensors."""

    threshold: float

    def apply(self, grads, params, loss=None):
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

    def apply(self, grads, params, loss=None):
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


class ZClip(tf.Module):
    """ZClip (Kumar et al. 2025, "ZClip: Adaptive Spike Mitigation for LLM
    Pre-Training", arXiv 2504.02507): a global-norm clip whose bound follows
    EMAs of the norm's mean and variance, so no threshold is given.

    After warm-up, a norm g with z = (g - mean) / (std + eps) above
    ``z_threshold`` is clipped to ``mean + z_threshold**2 / z * std`` (the
    paper's reciprocal rule: the larger the outlier, the tighter the bound).
    The EMAs then take the norm *as applied*, never the outlier itself, so a
    spike cannot raise the bar for the next one:
    ``mean = a*mean + (1-a)*e``, ``var = a*var + (1-a)*(e - mean)**2``.

    Warm-up (the paper's reference collects ``warmup_steps`` norms unclipped)
    is where an explosion that starts at step 0 gets through. Here each
    warm-up step is bounded by the smallest norm applied before it (a running
    minimum, as AdaGC, arXiv 2502.11034, bounds its warm-up), so warm-up norms
    can fall freely but never grow; the first step, with nothing before it,
    applies ``first_step_scale`` of its own norm. The warm-up's mean and
    variance are those of the norms as applied (Welford's running form), and
    seed the EMAs (docs/spikes.md says why, measured). A tf.Module:
    checkpoints carry its state, so a resumed run clips as an uninterrupted
    one would (the reference re-warms on every restart).
    """

    def __init__(self, alpha: float, z_threshold: float, warmup_steps: int, first_step_scale: float,
                 eps: float = 1e-6):
        super().__init__(name="zclip")
        self.alpha, self.z_threshold, self.warmup_steps = alpha, z_threshold, warmup_steps
        self.first_step_scale, self.eps = first_step_scale, eps
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="zclip_count")  # finite steps seen
        self.mean = tf.Variable(0.0, trainable=False, name="zclip_mean")
        self.var = tf.Variable(0.0, trainable=False, name="zclip_var")
        self.floor = tf.Variable(math.inf, trainable=False, name="zclip_floor")  # warm-up: smallest norm so far

    def _bound(self, norm: tf.Tensor, z: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
        """The bound in force for a step of pre-clip norm ``norm`` and z-score ``z``: after warm-up, the
        norm above which a step is clipped (``mean + z_threshold * (std + eps)``, where z passes the
        threshold), or, for a step above it, the bound it is clipped to; so the dashboard's threshold
        line is continuous."""
        adaptive = self.mean + self.z_threshold**2 / tf.maximum(z, self.eps) * std
        after = tf.where(z > self.z_threshold, adaptive, self.mean + self.z_threshold * (std + self.eps))
        during = tf.where(self.count > 0, self.floor, self.first_step_scale * norm)
        return tf.where(self.count >= self.warmup_steps, after, during)

    def _updated(self, applied: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Mean, variance and floor after a step whose norm, as applied (clipped), is ``applied``:
        Welford's running mean and variance during warm-up, then the paper's EMAs."""
        n = tf.cast(self.count + 1, tf.float32)
        warm_mean = self.mean + (applied - self.mean) / n
        warm_var = self.var + ((applied - self.mean) * (applied - warm_mean) - self.var) / n
        ema_mean = self.alpha * self.mean + (1.0 - self.alpha) * applied
        ema_var = self.alpha * self.var + (1.0 - self.alpha) * tf.square(applied - ema_mean)
        warming = self.count < self.warmup_steps
        return (tf.where(warming, warm_mean, ema_mean), tf.where(warming, warm_var, ema_var),
                tf.where(warming, tf.minimum(self.floor, applied), self.floor))

    def apply(self, grads, params, loss=None):
        pre_norms, pre_global = measure(grads)
        mean, std = self.mean.read_value(), tf.sqrt(self.var)
        z = (pre_global - mean) / (std + self.eps)
        warm = self.count >= self.warmup_steps  # statistics exist to judge this step
        clipped, stats = _clip_global(grads, pre_norms, pre_global, self._bound(pre_global, z, std))
        # Branch-free (the step is traced without autograph): a non-finite step leaves every statistic as it was.
        finite = tf.math.is_finite(pre_global)
        for variable, value in zip((self.mean, self.var, self.floor), self._updated(stats.post_global)):
            variable.assign(tf.where(finite, value, variable))
        self.count.assign_add(tf.cast(finite, tf.int64))
        return clipped, stats._replace(extra={"zclip_z": tf.where(warm, z, 0.0), "zclip_mean": mean, "zclip_std": std})


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

    def apply(self, grads, params, loss=None):
        clipped = []
        for g, w in zip(grads, params):
            g_norm = unitwise_norm(g)
            max_norm = tf.maximum(unitwise_norm(w), self.eps) * self.ratio
            clipped.append(tf.where(g_norm > max_norm, g * (max_norm / tf.maximum(g_norm, 1e-6)), g))
        return _remeasured(grads, clipped)


class SkipNonFinite(tf.Module):
    """Wraps any strategy, as optax's ``apply_if_finite``: a step whose gradient norm is
    NaN/Inf says ``skip`` (the step applies no update), and after ``max_in_a_row`` such
    steps in a row says ``stop``. An inner guard's skip and stop stand. A tf.Module:
    checkpoints carry the count."""

    def __init__(self, inner: ClipStrategy, max_in_a_row: int):
        super().__init__(name="skip_nonfinite")
        self.inner = inner
        self.max_in_a_row = max_in_a_row
        self.in_a_row = tf.Variable(0, dtype=tf.int64, trainable=False, name="nonfinite_in_a_row")

    def apply(self, grads, params, loss=None):
        clipped, stats = self.inner.apply(grads, params, loss)
        finite = tf.math.is_finite(stats.pre_global)
        self.in_a_row.assign(tf.where(finite, tf.constant(0, tf.int64), self.in_a_row + 1))
        return clipped, stats._replace(skip=tf.logical_or(stats.skip, tf.logical_not(finite)),
                                       stop=tf.logical_or(stats.stop, self.in_a_row >= self.max_in_a_row))


class SkipOnSpike(tf.Module):
    """Wraps any strategy: a step whose loss or pre-clip global norm is more than
    ``sigmas`` standard deviations above the mean of the last ``window`` applied
    steps applies no update (OLMo-core's SkipStepOptimizer, defaults 6 and 128;
    here one-sided, as only a rise is a spike). Silent until half a window is seen.

    A skipped step enters neither window, so one spike cannot raise the bar for
    the next (OLMo-core's windows keep them). ``max_in_a_row`` skips in a row
    say ``stop``: a loss that stays up is a divergence, not a spike, and
    ``trainer.on_divergence`` decides what follows. The loop leaves the optimizer
    untouched on a skip (no update, no iteration, no slot moves). Decided in the
    graph on the loss and norm every worker shares (summed across replicas).
    """

    def __init__(self, inner: ClipStrategy, sigmas: float, window: int, max_in_a_row: int):
        super().__init__(name="skip_on_spike")
        self.inner, self.sigmas, self.window, self.max_in_a_row = inner, sigmas, window, max_in_a_row
        self.losses = tf.Variable(tf.zeros([window]), trainable=False, name="spike_losses")  # rings of applied steps
        self.norms = tf.Variable(tf.zeros([window]), trainable=False, name="spike_norms")
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="spike_count")  # steps accepted so far
        self.in_a_row = tf.Variable(0, dtype=tf.int64, trainable=False, name="spikes_in_a_row")

    def _z(self, ring: tf.Variable, value: tf.Tensor) -> tf.Tensor:
        """``value``'s z-score against the ring's filled slots (sample std; 0 while the ring is under half full)."""
        n = tf.minimum(self.count, self.window)
        filled = tf.range(self.window, dtype=tf.int64) < n
        size = tf.cast(n, tf.float32)
        mean = tf.reduce_sum(tf.where(filled, ring, 0.0)) / tf.maximum(size, 1.0)
        std = tf.sqrt(tf.reduce_sum(tf.where(filled, tf.square(ring - mean), 0.0)) / tf.maximum(size - 1.0, 1.0))
        return tf.where(n >= max(self.window // 2, 2), tf.math.divide_no_nan(value - mean, std), 0.0)

    def _push(self, ring: tf.Variable, value: tf.Tensor, accept: tf.Tensor) -> None:
        # A whole-array assign: mirrored variables (under a distribution) have no scatter_nd_update.
        slot = self.count % self.window
        ring.assign(tf.tensor_scatter_nd_update(ring, [[slot]], [tf.where(accept, value, ring[slot])]))

    def apply(self, grads, params, loss=None):
        clipped, stats = self.inner.apply(grads, params, loss)
        loss = tf.zeros([]) if loss is None else tf.cast(loss, tf.float32)
        loss_z, norm_z = self._z(self.losses, loss), self._z(self.norms, stats.pre_global)
        spike = tf.logical_or(loss_z > self.sigmas, norm_z > self.sigmas)
        finite = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(stats.pre_global))
        accept = tf.logical_and(tf.logical_and(finite, tf.logical_not(spike)), tf.logical_not(stats.skip))
        self._push(self.losses, loss, accept)
        self._push(self.norms, stats.pre_global, accept)
        self.count.assign_add(tf.cast(accept, tf.int64))
        self.in_a_row.assign(tf.where(spike, self.in_a_row + 1, tf.where(accept, tf.constant(0, tf.int64), self.in_a_row)))
        extra = {**stats.extra, "spike_loss_z": loss_z, "spike_norm_z": norm_z}
        return clipped, stats._replace(skip=tf.logical_or(stats.skip, spike),
                                       stop=tf.logical_or(stats.stop, self.in_a_row >= self.max_in_a_row), extra=extra)


def build(options: ClipOptions) -> ClipStrategy:
    """The bare strategy ``clip.strategy`` names (options.STRATEGIES): its class here, given the settings it
    reads as its constructor's arguments."""
    check_strategy(options.strategy, "clip.strategy")  # again: options can be made past their own check
    spec = STRATEGIES[options.strategy]
    return globals()[spec.implementation](**{name: getattr(options, name) for name in spec.settings})


def make_strategy(options: ClipOptions) -> SkipNonFinite:
    """The strategy the config names, inside the guards (create it outside any tf.function): the spike guard
    where ``clip.skip_spikes`` asks for it, and always the non-finite guard outermost."""
    strategy = build(options)
    if options.skip_spikes:
        strategy = SkipOnSpike(strategy, options.spike_sigmas, options.spike_window, options.max_consecutive_spikes)
    return SkipNonFinite(strategy, options.max_consecutive_nonfinite)
