import inspect
import math

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import clipping
from components.common.errors import ConfigError
from components.trainer.options import STRATEGIES, ClipOptions

# Gradients of three variables shaped [2], [4], [8]; norms 5, 4 and sqrt(32).
GRADS = [tf.constant([3.0, 4.0]), tf.constant([2.0, 2.0, 2.0, 2.0]), tf.constant([2.0] * 8)]
GLOBAL = math.sqrt(25 + 16 + 32)
PARAMS = [tf.Variable(tf.ones_like(g)) for g in GRADS]  # what the strategies that read weights (agc) see


def _np(tensors):
    return [t.numpy() for t in tensors]


def test_global_norm_scales_all_by_one_factor_and_keeps_direction():
    clipped, stats = clipping.ClipByGlobalNorm(4.0).apply(GRADS, PARAMS)
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
    clipped, stats = clipping.ClipByGlobalNorm(100.0).apply(GRADS, PARAMS)
    for got, grad in zip(_np(clipped), _np(GRADS)):
        np.testing.assert_array_equal(got, grad)
    assert float(stats.scale) == 1.0
    assert float(stats.threshold) == 100.0


@pytest.mark.parametrize("threshold", [0.5, 3.0, 8.0, 50.0])
def test_post_clip_global_norm_never_exceeds_threshold(threshold):
    rng = np.random.default_rng(int(threshold * 10))
    grads = [tf.constant(rng.normal(size=s) * 10, tf.float32) for s in (2, 4, 8)]
    clipped, stats = clipping.ClipByGlobalNorm(threshold).apply(grads, PARAMS)
    assert float(tf.linalg.global_norm(clipped)) <= threshold * (1 + 1e-6)
    assert float(stats.post_global) <= threshold * (1 + 1e-6)


def test_norm_clips_each_tensor_on_its_own():
    clipped, stats = clipping.ClipByNorm(4.5).apply(GRADS, PARAMS)
    for got, grad in zip(_np(clipped), GRADS):
        np.testing.assert_allclose(got, tf.clip_by_norm(grad, 4.5).numpy(), rtol=1e-6)
    np.testing.assert_allclose(stats.post_norms.numpy(), [4.5, 4.0, 4.5], rtol=1e-6)
    assert float(stats.post_global) == pytest.approx(math.sqrt(4.5**2 + 16 + 4.5**2), rel=1e-6)
    assert float(stats.scale) == pytest.approx(float(stats.post_global) / GLOBAL, rel=1e-6)


def test_value_clips_elements():
    clipped, stats = clipping.ClipByValue(-1.0, 2.5).apply(GRADS, PARAMS)
    expected = [np.array([2.5, 2.5]), np.full(4, 2.0), np.full(8, 2.0)]
    for got, want in zip(_np(clipped), expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(stats.post_norms.numpy(), [math.sqrt(12.5), 4.0, math.sqrt(32)], rtol=1e-6)
    assert math.isinf(float(stats.threshold))


def test_none_reports_norms_and_changes_nothing():
    clipped, stats = clipping.NoClip().apply(GRADS, PARAMS)
    for got, grad in zip(_np(clipped), _np(GRADS)):
        np.testing.assert_array_equal(got, grad)
    assert float(stats.pre_global) == pytest.approx(GLOBAL, rel=1e-6)
    assert float(stats.post_global) == float(stats.pre_global)
    assert float(stats.scale) == 1.0


def test_percentile_threshold_is_a_percentile_of_recent_norms():
    strategy = clipping.PercentileClip(percentile=50.0, window=3)
    thresholds = []
    for scale in (1.0, 3.0, 2.0, 10.0):  # global norms GLOBAL * scale
        _, stats = strategy.apply([g * scale for g in GRADS], PARAMS)
        thresholds.append(float(stats.threshold) / GLOBAL)
    # History after each step: [1] -> median 1; [1,3] -> 1 (lower median);
    # [1,3,2] -> 2; window 3 drops 1: [3,2,10] -> 3.
    np.testing.assert_allclose(thresholds, [1.0, 1.0, 2.0, 3.0], rtol=1e-6)
    _, stats = strategy.apply([g * 10.0 for g in GRADS], PARAMS)  # [10, 2, 10] -> median 10: no clip
    assert float(stats.scale) == pytest.approx(1.0)


def test_percentile_ignores_non_finite_norms():
    strategy = clipping.PercentileClip(percentile=100.0, window=10)
    strategy.apply(GRADS, PARAMS)
    history = strategy.history.numpy()
    strategy.apply([tf.constant([math.inf, 0.0])] + GRADS[1:], PARAMS)
    assert int(strategy.count.numpy()) == 1
    np.testing.assert_array_equal(strategy.history.numpy(), history)


def agc_numpy(grad: np.ndarray, weight: np.ndarray, ratio: float, eps: float) -> np.ndarray:
    """The paper's formula, unit by unit: G_i <- ratio * max(|W_i|, eps) / |G_i| * G_i where
    |G_i| / max(|W_i|, eps) > ratio; a kernel's units are its output columns, a bias's its elements."""
    out = grad.copy()
    columns = grad.reshape(-1, grad.shape[-1]) if grad.ndim > 1 else grad.reshape(1, -1)
    weights = weight.reshape(-1, weight.shape[-1]) if weight.ndim > 1 else weight.reshape(1, -1)
    clipped = out.reshape(columns.shape)
    for unit in range(columns.shape[1]):
        g_norm = np.linalg.norm(columns[:, unit])
        w_norm = max(np.linalg.norm(weights[:, unit]), eps)
        if g_norm / w_norm > ratio:
            clipped[:, unit] = columns[:, unit] * ratio * w_norm / g_norm
    return clipped.reshape(grad.shape)


def _kernel_and_bias(seed: int):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(6, 4)), np.array([0.0, 0.5, -2.0, 1e-5])]  # a zero bias: the eps floor
    grads = [rng.normal(size=(6, 4)) * [[0.01, 1.0, 0.1, 5.0]], np.array([0.3, -1e-4, 0.05, 2.0])]
    return [tf.Variable(w, dtype=tf.float32) for w in weights], [tf.constant(g, tf.float32) for g in grads]


@pytest.mark.parametrize("autograph", [None, False, True])  # eager, and traced as the training step is
@pytest.mark.parametrize("ratio,eps", [(0.01, 1e-3), (0.1, 1e-3), (1.0, 0.1)])
def test_agc_matches_the_papers_formula(ratio, eps, autograph):
    params, grads = _kernel_and_bias(int(ratio * 100))
    strategy = clipping.UnitwiseAdaptiveClip(ratio, eps)
    apply = strategy.apply if autograph is None else tf.function(strategy.apply, autograph=autograph)
    clipped, stats = apply(grads, params)
    for got, g, w in zip(clipped, grads, params):
        np.testing.assert_allclose(got.numpy(), agc_numpy(g.numpy(), w.numpy(), ratio, eps), rtol=1e-5, atol=1e-9)
    expected = [agc_numpy(g.numpy(), w.numpy(), ratio, eps) for g, w in zip(grads, params)]
    np.testing.assert_allclose(stats.post_norms.numpy(), [np.linalg.norm(e) for e in expected], rtol=1e-5)
    np.testing.assert_allclose(stats.pre_norms.numpy(), [np.linalg.norm(g.numpy()) for g in grads], rtol=1e-5)
    assert float(stats.scale) == pytest.approx(np.linalg.norm(np.concatenate([e.ravel() for e in expected]))
                                               / float(stats.pre_global), rel=1e-5)
    assert math.isinf(float(stats.threshold))


def test_agc_leaves_units_under_the_ratio_alone_and_bounds_the_others():
    params, grads = _kernel_and_bias(7)
    clipped, stats = clipping.UnitwiseAdaptiveClip(0.1, 1e-3).apply(grads, params)
    kernel, grad = params[0].numpy(), grads[0].numpy()
    for unit in range(4):
        bound = 0.1 * max(np.linalg.norm(kernel[:, unit]), 1e-3)
        got = clipped[0].numpy()[:, unit]
        if np.linalg.norm(grad[:, unit]) <= bound:
            np.testing.assert_array_equal(got, grad[:, unit])
        else:
            assert np.linalg.norm(got) == pytest.approx(bound, rel=1e-5)
    assert float(stats.scale) < 1.0  # some unit was clipped: the step counts as clipped


ALL = ["none", "value", "norm", "global_norm", "percentile", "agc", "zclip"]


@pytest.mark.parametrize(
    "name,kind", [("none", clipping.NoClip), ("value", clipping.ClipByValue), ("norm", clipping.ClipByNorm),
                  ("global_norm", clipping.ClipByGlobalNorm), ("percentile", clipping.PercentileClip),
                  ("agc", clipping.UnitwiseAdaptiveClip), ("zclip", clipping.ZClip)]
)
def test_make_strategy_wraps_the_named_strategy_in_the_non_finite_guard(name, kind):
    strategy = clipping.make_strategy(ClipOptions(strategy=name, max_consecutive_nonfinite=4))
    assert isinstance(strategy, clipping.SkipNonFinite) and isinstance(strategy.inner, kind)
    assert strategy.max_in_a_row == 4
    assert sorted(STRATEGIES) == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_each_strategy_is_built_from_exactly_the_settings_it_reads(name):
    """The registry's settings are the class's constructor arguments: one not passed, or passed and not
    taken, fails here, not in a Trainer."""
    spec = STRATEGIES[name]
    parameters = inspect.signature(getattr(clipping, spec.implementation)).parameters.values()
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
    assert set(required) <= set(spec.settings) <= {p.name for p in parameters}
    assert all(hasattr(ClipOptions, setting) for setting in spec.settings)


@pytest.mark.parametrize("name", ALL)
def test_the_strategies_said_to_have_a_threshold_have_one_on_every_step_and_no_other_does(name):
    """The flag that gives the Clipping dashboard its threshold chart: a finite bound on every step (warm-up and
    spikes included) that no step's clipped norm exceeds where it bounds the global norm."""
    strategy = clipping.make_strategy(ClipOptions(strategy=name, threshold=1.0, warmup_steps=2))
    thresholds = []
    for scale in (0.1, 0.2, 10.0, 1000.0, 0.1, 50.0):
        _, stats = strategy.apply([g * scale for g in GRADS], PARAMS)
        thresholds.append(float(stats.threshold))
        if name != "norm":  # a bound per tensor: the global norm may sum above it
            assert float(stats.post_global) <= float(stats.threshold) * (1 + 1e-6)
    assert all(map(math.isfinite, thresholds)) == STRATEGIES[name].has_threshold, thresholds


@pytest.mark.parametrize("name", ALL)
def test_strategies_trace_without_autograph_as_the_training_step_does(name):
    options = ClipOptions(strategy=name, threshold=4.0)
    eager_clipped, eager_stats = clipping.make_strategy(options).apply(GRADS, PARAMS)
    clipped, stats = tf.function(clipping.make_strategy(options).apply, autograph=False)(GRADS, PARAMS)
    flat, eager_flat = tf.nest.flatten([clipped, stats]), tf.nest.flatten([eager_clipped, eager_stats])
    assert len(flat) == len(eager_flat)
    for got, want in zip(flat, eager_flat):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_the_guard_around_each_strategy_skips_non_finite_steps_and_stops_after_k_in_a_row(name):
    guard = clipping.make_strategy(ClipOptions(strategy=name, threshold=4.0, max_consecutive_nonfinite=2))
    apply = tf.function(guard.apply, autograph=False)
    poisoned = [tf.constant([math.nan, 1.0])] + GRADS[1:]
    verdicts = []
    for grads in (GRADS, poisoned, GRADS, poisoned, poisoned, GRADS):
        _, stats = apply(grads, PARAMS)
        verdicts.append((bool(stats.skip), bool(stats.stop)))
    # A finite step resets the count; the second non-finite step in a row says stop.
    assert verdicts == [(False, False), (True, False), (False, False), (True, False), (True, True), (False, False)]
    _, stats = guard.inner.apply(poisoned, PARAMS)  # the bare strategy has no opinion: it never skips
    assert not bool(stats.skip) and not bool(stats.stop)


def test_an_unknown_strategy_name_is_an_error_not_a_default():
    options = ClipOptions()
    object.__setattr__(options, "strategy", "sometimes")  # past the config's own check: the factory checks again
    with pytest.raises(ConfigError, match="clip.strategy: unknown strategy 'sometimes'; known: none, value, norm"):
        clipping.make_strategy(options)


def zclip_numpy(norms, alpha, z_threshold, warmup, first_scale, eps=1e-6):
    """ZClip, transcribed from the paper (arXiv 2504.02507, Algorithm 1, reciprocal rule) with a buffer and
    plain floats, plus clipflow's warm-up: each warm-up step bounded by the smallest norm applied before it
    (the first by ``first_scale`` of its own norm); the statistics start as the mean and population variance
    of the warm-up's norms as applied, as the EMAs take them after it. Returns, per step, the bound in
    force (below the trigger, the trigger itself: the norm above which a step is clipped) and the z, mean
    and standard deviation in force (None for a skipped, non-finite step)."""
    warm = []  # the warm-up's norms as applied
    mean = var = 0.0
    rows = []
    for g in norms:
        if not math.isfinite(g):
            rows.append(None)  # a skipped step: nothing changes
            continue
        if len(warm) < warmup:
            bound = min(warm) if warm else first_scale * g
            rows.append((bound, 0.0, mean, math.sqrt(var)))
            warm.append(min(g, bound))
            mean, var = float(np.mean(warm)), float(np.var(warm))
            continue
        std = math.sqrt(var)
        z = (g - mean) / (std + eps)
        bound = mean + z_threshold**2 / z * std if z > z_threshold else mean + z_threshold * (std + eps)
        applied = min(g, bound)
        rows.append((bound, z, mean, std))
        mean = alpha * mean + (1 - alpha) * applied
        var = alpha * var + (1 - alpha) * (applied - mean) ** 2
    return rows


# Norms with a warm-up that explodes from its first step, a calm stretch, spikes, a NaN and a fall below the mean.
ZCLIP_NORMS = [50.0, 400.0, 3000.0, 2.0, 1.5, 1.2, 1.1, 1.0, 1.3, 0.9, 1.0, 1.2, 40.0, 1.1, math.nan, 0.95, 1.05,
               500.0, 1.0, 0.2, 1.1, 1.0, 3.0, 1.0, 0.99]


@pytest.mark.parametrize("alpha,z_threshold,warmup,first_scale", [(0.97, 2.5, 5, 0.01), (0.97, 2.5, 5, 0.1),
                                                                   (0.8, 1.5, 3, 1.0), (0.9, 2.0, 1, 0.1)])
def test_zclip_bound_step_by_step_matches_the_papers_formula(alpha, z_threshold, warmup, first_scale):
    strategy = clipping.ZClip(alpha, z_threshold, warmup, first_scale)
    apply = tf.function(strategy.apply, autograph=False)  # traced as the training step traces it
    unit = [g / GLOBAL for g in GRADS]  # global norm 1: the gradients scaled to each norm
    expected = zclip_numpy(ZCLIP_NORMS, alpha, z_threshold, warmup, first_scale)
    clipped_any = 0
    for step, (norm, want) in enumerate(zip(ZCLIP_NORMS, expected)):
        clipped, stats = apply([u * norm for u in unit], PARAMS)
        if want is None:
            assert not math.isfinite(float(stats.pre_global))
            continue
        bound, z, mean, std = want
        got = float(stats.threshold)
        assert got == pytest.approx(bound, rel=1e-5), (step, got, bound)
        assert float(stats.post_global) == pytest.approx(min(norm, bound), rel=1e-5), step
        assert float(tf.linalg.global_norm(clipped)) == pytest.approx(min(norm, bound), rel=1e-5), step
        if step < warmup:
            assert float(stats.extra["zclip_z"]) == 0.0, step  # no statistics yet
        else:  # the statistics in force (reported for telemetry)
            assert float(stats.extra["zclip_mean"]) == pytest.approx(mean, rel=1e-5), step
            assert float(stats.extra["zclip_std"]) == pytest.approx(std, rel=1e-3, abs=1e-5), step
            if std > 1e-3 * mean:
                assert float(stats.extra["zclip_z"]) == pytest.approx(z, rel=1e-3, abs=1e-3), step
            else:  # warm-up norms all held at one bound: z is huge, and only its side of the threshold matters
                assert (float(stats.extra["zclip_z"]) > z_threshold) == (z > z_threshold), step
        clipped_any += norm > bound
    assert 3 <= clipped_any < sum(map(math.isfinite, ZCLIP_NORMS))  # the sequence exercises both sides of the bound


def test_zclip_holds_an_explosion_from_its_first_step():
    """Norms that grow tenfold each step from step 0: no threshold given, every step is bounded by the first's
    scaled norm (where percentile, which counts the step's own norm, lets each through)."""
    strategy = clipping.ZClip(0.97, 2.5, 25, 0.01)
    unit = [g / GLOBAL for g in GRADS]
    for step in range(8):
        _, stats = strategy.apply([u * 10.0**step for u in unit], PARAMS)
        assert float(stats.post_global) == pytest.approx(0.01, rel=1e-5)
    percentile = clipping.PercentileClip(percentile=90.0, window=100)
    _, stats = percentile.apply([u * 10.0**7 for u in unit], PARAMS)
    assert float(stats.post_global) == pytest.approx(1e7, rel=1e-5)


def _z_numpy(window, value):
    """z-score against a window, its sample standard deviation (ddof=1), as OLMo-core's torch.std_mean."""
    return (value - np.mean(window)) / np.std(window, ddof=1)


def test_skip_on_spike_skips_a_spike_and_keeps_it_out_of_its_window():
    guard = clipping.SkipOnSpike(clipping.NoClip(), sigmas=3.0, window=6, max_in_a_row=3)
    apply = tf.function(guard.apply, autograph=False)
    unit = [g / GLOBAL for g in GRADS]
    calm = list(zip([1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.1, 0.9], [2.0, 2.1, 1.9, 2.0, 2.05, 1.95, 2.0, 2.1]))  # (norm, loss)
    applied = []
    for step, (norm, loss) in enumerate(calm):
        _, stats = apply([u * norm for u in unit], PARAMS, tf.constant(loss))
        assert not bool(stats.skip), step
        if step < 3:  # under half a window seen: silent
            assert float(stats.extra["spike_norm_z"]) == 0.0
        else:
            window = [n for n, _ in applied[-6:]]
            assert float(stats.extra["spike_norm_z"]) == pytest.approx(_z_numpy(window, norm), rel=1e-4, abs=1e-4)
            assert float(stats.extra["spike_loss_z"]) == pytest.approx(
                _z_numpy([lo for _, lo in applied[-6:]], loss), rel=1e-4, abs=1e-4)
        applied.append((norm, loss))
    rings = guard.norms.numpy().copy(), guard.losses.numpy().copy()
    for norm, loss in [(30.0, 2.0), (1.0, 50.0)]:  # a norm spike, then a loss spike: each skipped
        _, stats = apply([u * norm for u in unit], PARAMS, tf.constant(loss))
        assert bool(stats.skip) and not bool(stats.stop)
    np.testing.assert_array_equal(guard.norms.numpy(), rings[0])  # neither entered the windows
    np.testing.assert_array_equal(guard.losses.numpy(), rings[1])
    _, stats = apply([u * 0.01 for u in unit], PARAMS, tf.constant(0.01))  # far below: one-sided, applied
    assert not bool(stats.skip) and int(guard.in_a_row.numpy()) == 0
    verdicts = [bool(apply([u * 100.0 for u in unit], PARAMS, tf.constant(2.0))[1].stop) for _ in range(3)]
    assert verdicts == [False, False, True]  # three spikes in a row: a divergence, not a spike


def test_the_guards_compose_around_any_strategy_and_keep_each_others_verdicts():
    options = ClipOptions(strategy="zclip", skip_spikes=True, spike_window=4, spike_sigmas=3.0,
                          max_consecutive_spikes=5, max_consecutive_nonfinite=2)
    guard = clipping.make_strategy(options)
    assert isinstance(guard, clipping.SkipNonFinite) and isinstance(guard.inner, clipping.SkipOnSpike)
    assert isinstance(guard.inner.inner, clipping.ZClip)
    apply = tf.function(guard.apply, autograph=False)
    for norm in (1.0, 1.1, 0.9, 1.0, 1.05):
        assert not bool(apply([g / GLOBAL * norm for g in GRADS], PARAMS, tf.constant(1.0))[1].skip)
    _, stats = apply([g / GLOBAL * 1e4 for g in GRADS], PARAMS, tf.constant(1.0))
    assert bool(stats.skip) and {"zclip_z", "spike_norm_z"} <= set(stats.extra)  # the inner guard's skip stands
    poisoned = [tf.constant([math.nan, 1.0])] + GRADS[1:]
    verdicts = [(bool(s.skip), bool(s.stop)) for s in (apply(poisoned, PARAMS, tf.constant(1.0))[1] for _ in range(2))]
    assert verdicts == [(True, False), (True, True)]
