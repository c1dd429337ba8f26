import math

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import clipping
from components.trainer.options import ClipOptions

# Gradients of three variables shaped [2], [4], [8]; norms 5, 4 and sqrt(32).
GRADS = [tf.constant([3.0, 4.0]), tf.constant([2.0, 2.0, 2.0, 2.0]), tf.constant([2.0] * 8)]
GLOBAL = math.sqrt(25 + 16 + 32)


def _np(tensors):
    return [t.numpy() for t in tensors]


def test_global_norm_scales_all_by_one_factor_and_keeps_direction():
    clipped, stats = clipping.ClipByGlobalNorm(4.0).apply(GRADS)
    factor = 4.0 / GLOBAL
    for got, grad in zip(_np(clipped), _np(GRADS)):
        np.testing.assert_allclose(got, grad * factor, rtol=1e-6)
    flat_pre, flat_post = np.concatenate(_np(GRADS)), np.concatenate(_np(clipped))
    cosine = flat_pre @ flat_post / (np.linalg.norm(flat_pre) * np.linalg.norm(flat_post))
    assert cosine == pytest.approx(1.0, abs=1e-6)
    assert float(stats.pre_global) == pytest.approx(GLOBAL, rel=1e-6)
    assert float(stats.post_global) == pytest.approx(4.0, rel=1e-6)
    assert float(stats.scale) == pytest.approx(factor, rel=1e-6)
    np.testing.assert_allclose(stats.pre_norms.numpy(), [5.0, 4.0, math.sqrt(32)], rtol=1e-6)
    np.testing.assert_allclose(stats.post_norms.numpy(), np.array([5.0, 4.0, math.sqrt(32)]) * factor, rtol=1e-6)
    expected, norm = tf.clip_by_global_norm(GRADS, 4.0)
    assert float(norm) == pytest.approx(GLOBAL, rel=1e-6)
    for got, want in zip(_np(clipped), _np(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_global_norm_below_threshold_is_untouched():
    clipped, stats = clipping.ClipByGlobalNorm(100.0).apply(GRADS)
    for got, grad in zip(_np(clipped), _np(GRADS)):
        np.testing.assert_array_equal(got, grad)
    assert float(stats.scale) == 1.0
    assert float(stats.threshold) == 100.0


@pytest.mark.parametrize("threshold", [0.5, 3.0, 8.0, 50.0])
def test_post_clip_global_norm_never_exceeds_threshold(threshold):
    rng = np.random.default_rng(int(threshold * 10))
    grads = [tf.constant(rng.normal(size=s) * 10, tf.float32) for s in (2, 4, 8)]
    clipped, stats = clipping.ClipByGlobalNorm(threshold).apply(grads)
    assert float(tf.linalg.global_norm(clipped)) <= threshold * (1 + 1e-6)
    assert float(stats.post_global) <= threshold * (1 + 1e-6)


def test_norm_clips_each_tensor_on_its_own():
    clipped, stats = clipping.ClipByNorm(4.5).apply(GRADS)
    for got, grad in zip(_np(clipped), GRADS):
        np.testing.assert_allclose(got, tf.clip_by_norm(grad, 4.5).numpy(), rtol=1e-6)
    np.testing.assert_allclose(stats.post_norms.numpy(), [4.5, 4.0, 4.5], rtol=1e-6)
    assert float(stats.post_global) == pytest.approx(math.sqrt(4.5**2 + 16 + 4.5**2), rel=1e-6)
    assert float(stats.scale) == pytest.approx(float(stats.post_global) / GLOBAL, rel=1e-6)


def test_value_clips_elements():
    clipped, stats = clipping.ClipByValue(-1.0, 2.5).apply(GRADS)
    expected = [np.array([2.5, 2.5]), np.full(4, 2.0), np.full(8, 2.0)]
    for got, want in zip(_np(clipped), expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(stats.post_norms.numpy(), [math.sqrt(12.5), 4.0, math.sqrt(32)], rtol=1e-6)
    assert math.isinf(float(stats.threshold))


def test_none_reports_norms_and_changes_nothing():
    clipped, stats = clipping.NoClip().apply(GRADS)
    for got, grad in zip(_np(clipped), _np(GRADS)):
        np.testing.assert_array_equal(got, grad)
    assert float(stats.pre_global) == pytest.approx(GLOBAL, rel=1e-6)
    assert float(stats.post_global) == float(stats.pre_global)
    assert float(stats.scale) == 1.0


def test_adaptive_threshold_is_a_percentile_of_recent_norms():
    strategy = clipping.AdaptiveClip(percentile=50.0, window=3)
    thresholds = []
    for scale in (1.0, 3.0, 2.0, 10.0):  # global norms GLOBAL * scale
        _, stats = strategy.apply([g * scale for g in GRADS])
        thresholds.append(float(stats.threshold) / GLOBAL)
    # History after each step: [1] -> median 1; [1,3] -> 1 (lower median);
    # [1,3,2] -> 2; window 3 drops 1: [3,2,10] -> 3.
    np.testing.assert_allclose(thresholds, [1.0, 1.0, 2.0, 3.0], rtol=1e-6)
    _, stats = strategy.apply([g * 10.0 for g in GRADS])  # [10, 2, 10] -> median 10: no clip
    assert float(stats.scale) == pytest.approx(1.0)


def test_adaptive_ignores_non_finite_norms():
    strategy = clipping.AdaptiveClip(percentile=100.0, window=10)
    strategy.apply(GRADS)
    history = strategy.history.numpy()
    strategy.apply([tf.constant([math.inf, 0.0])] + GRADS[1:])
    assert int(strategy.count.numpy()) == 1
    np.testing.assert_array_equal(strategy.history.numpy(), history)


@pytest.mark.parametrize(
    "name,kind", [("none", clipping.NoClip), ("value", clipping.ClipByValue), ("norm", clipping.ClipByNorm),
                  ("global_norm", clipping.ClipByGlobalNorm), ("adaptive", clipping.AdaptiveClip)]
)
def test_make_strategy(name, kind):
    assert isinstance(clipping.make_strategy(ClipOptions(strategy=name)), kind)


@pytest.mark.parametrize("name", ["none", "value", "norm", "global_norm", "adaptive"])
def test_strategies_trace_without_autograph_as_the_training_step_does(name):
    options = ClipOptions(strategy=name, threshold=4.0)
    eager_clipped, eager_stats = clipping.make_strategy(options).apply(GRADS)
    clipped, stats = tf.function(clipping.make_strategy(options).apply, autograph=False)(GRADS)
    for got, want in zip([*clipped, *stats], [*eager_clipped, *eager_stats]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
