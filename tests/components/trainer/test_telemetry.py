"""Event files read back with TensorBoard's reader: tags, values and cadence."""
import numpy as np
import pytest
import tensorflow as tf

from components.trainer.loop import make_loss
from components.trainer.model import MLP
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import make_optimizer, train
from components.trainer.telemetry import HISTOGRAM_BUCKETS, histogram_buckets
from pipeline.tools.events import read_run
from tests.components.trainer.helpers import SIZE, synthetic_split, tiny_run

pytestmark = pytest.mark.slow  # trains real models

VARIABLES = ["dense_0/kernel", "dense_0/bias", "dense_1/kernel", "dense_1/bias"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("telemetry"))
    (model, report), options = tiny_run(logdir, clip=ClipOptions(strategy="global_norm", threshold=0.5))
    return logdir, report, options


def test_per_step_scalar_tags(run):
    logdir, report, _ = run
    events = read_run(logdir)
    expected = {"loss", "learning_rate", "grad_norm/pre_clip", "grad_norm/post_clip", "clip/scale", "clip/clipped",
                "clip/clipped_fraction", "clip/clipped_fraction_recent", "clip/threshold", "nonfinite/steps"}
    expected |= {f"grad_norm/{name}/{when}" for when in ("pre_clip", "post_clip") for name in VARIABLES}
    assert expected <= set(events)
    for tag in expected:
        assert sorted(events[tag]) == list(range(12)), tag


def test_pre_clip_norm_equals_an_independent_computation(run):
    logdir, _, options = run
    images, labels = synthetic_split().images, synthetic_split().labels
    model = MLP(options.hidden_units, options.init, options.seed)  # same seed: the run's initial weights
    with tf.GradientTape() as tape:
        loss = make_loss("mse")(labels, model(images))
    grads = tape.gradient(loss, model.variables_in_order)
    events = read_run(logdir)
    assert float(events["grad_norm/pre_clip"][0]) == pytest.approx(float(tf.linalg.global_norm(grads)), rel=1e-5)
    for name, grad in zip(VARIABLES, grads):
        assert float(events[f"grad_norm/{name}/pre_clip"][0]) == pytest.approx(float(tf.norm(grad)), rel=1e-5)
    assert float(events["loss"][0]) == pytest.approx(float(loss), rel=1e-6)


def test_post_clip_never_exceeds_threshold_and_scale_is_consistent(run):
    logdir, report, _ = run
    events = read_run(logdir)
    for step, post in events["grad_norm/post_clip"].items():
        pre = float(events["grad_norm/pre_clip"][step])
        assert float(post) <= 0.5 * (1 + 1e-5)
        assert float(events["clip/scale"][step]) == pytest.approx(min(1.0, 0.5 / pre), rel=1e-5)
        assert float(events["clip/clipped"][step]) == float(pre > 0.5)
        assert float(events["clip/threshold"][step]) == 0.5
    clipped = [float(v) for _, v in sorted(events["clip/clipped"].items())]
    assert float(events["clip/clipped_fraction"][11]) == pytest.approx(np.mean(clipped), rel=1e-6)
    assert report.clipped_fraction == pytest.approx(np.mean(clipped), rel=1e-6)


def test_recent_clip_rate_is_the_mean_of_the_last_window_of_steps(run):
    logdir, _, _ = run
    events = read_run(logdir)
    clipped = np.array([float(events["clip/clipped"][s]) for s in range(12)])
    assert 0 < clipped.sum() < 12  # the window sees both kinds of step
    for step in range(12):
        expected = clipped[max(0, step - 4) : step + 1].mean()  # tiny_run's window: 5 steps
        assert float(events["clip/clipped_fraction_recent"][step]) == pytest.approx(expected, rel=1e-6), step


def test_histograms_at_the_configured_cadence(run):
    logdir, _, _ = run
    events = read_run(logdir)
    for name in VARIABLES:
        for tag in (f"grad_hist/{name}/pre_clip", f"grad_hist/{name}/post_clip", f"weights/{name}"):
            steps = events[tag]
            assert sorted(steps) == [0, 5, 10], tag
            buckets = steps[0]
            assert buckets.shape == (30, 3)
            assert buckets[:, 2].sum() == {"dense_0/kernel": 784 * 16, "dense_0/bias": 16,
                                           "dense_1/kernel": 160, "dense_1/bias": 10}[name]


def test_histogram_matches_the_gradient(run):
    logdir, _, options = run
    images, labels = synthetic_split().images, synthetic_split().labels
    model = MLP(options.hidden_units, options.init, options.seed)
    with tf.GradientTape() as tape:
        loss = make_loss("mse")(labels, model(images))
    grad = tape.gradient(loss, model.kernels[1]).numpy().ravel()
    buckets = read_run(logdir)["grad_hist/dense_1/kernel/pre_clip"][0]
    assert buckets[0, 0] == pytest.approx(grad.min(), rel=1e-5)
    assert buckets[-1, 1] == pytest.approx(grad.max(), rel=1e-5)
    counts, _ = np.histogram(grad, bins=30, range=(grad.min(), grad.max()))
    assert np.abs(buckets[:, 2] - counts).sum() <= 2  # float rounding at bucket edges


def test_histograms_of_many_tensors_at_once_count_as_histogram_fixed_width_counts_each():
    """All tensors in one pass, bucket for bucket as TensorFlow's op buckets each alone, values on bucket
    edges included (rounded to eighths), at scales from 1e-8 to 1e3, and a constant tensor."""
    rng = np.random.default_rng(0)
    tensors = [tf.constant((rng.normal(size=n) * 10.0 ** rng.uniform(-8, 3)).astype(np.float32)) for n in (1000, 37)]
    tensors += [tf.constant(np.round(rng.normal(size=2000) * 8).astype(np.float32) / 8), tf.fill([5, 4], 2.5),
                tf.constant(np.linspace(-1, 1, 301, dtype=np.float32))]
    buckets = histogram_buckets(tensors).numpy()
    assert buckets.shape == (len(tensors), HISTOGRAM_BUCKETS, 3)
    for tensor, got in zip(tensors, buckets):
        low, high = float(tf.reduce_min(tensor)), float(tf.reduce_max(tensor))
        high = high if high > low else low + 1.0
        expected = tf.histogram_fixed_width(tf.reshape(tensor, [-1]), [low, high], nbins=HISTOGRAM_BUCKETS).numpy()
        assert (got[:, 2] == expected).all()
        assert got[0, 0] == low and got[-1, 1] == high
        assert (got[1:, 0] == got[:-1, 1]).all()  # the buckets tile the range


def test_eval_is_its_own_run(run):
    logdir, report, _ = run
    events = read_run(logdir, "eval")
    assert sorted(events["accuracy"]) == list(range(1, 13))  # after each epoch, at the global step
    assert float(events["accuracy"][12]) == pytest.approx(report.eval_accuracy)


def test_gradient_report(run):
    logdir, report, _ = run
    events = read_run(logdir)
    norms = np.array([float(events["grad_norm/pre_clip"][s]) for s in range(12)])
    assert report.steps == 12
    assert report.max_pre_clip_norm == pytest.approx(norms.max(), rel=1e-6)
    assert report.median_pre_clip_norm == pytest.approx(np.median(norms), rel=1e-6)
    assert report.p99_pre_clip_norm == pytest.approx(np.percentile(norms, 99), rel=1e-6)
    assert report.first_clipped_step == int(np.flatnonzero(norms > 0.5)[0])
    assert report.nonfinite_steps == 0 and report.diverged_at_step is None
    per_var = {name: max(float(events[f"grad_norm/{name}/pre_clip"][s]) for s in range(12)) for name in VARIABLES}
    assert report.largest_norm_variable == max(per_var, key=per_var.get)
    assert report.p90_pre_clip_norm == pytest.approx(np.percentile(norms, 90), rel=1e-6)
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        value = np.percentile(norms, q)
        assert report.threshold_advice[name]["threshold"] == pytest.approx(value, rel=1e-6)
        assert report.threshold_advice[name]["steps_touched"] == np.mean(norms > value)
    assert report.threshold_advice["max"]["steps_touched"] == 0.0
    line = next(line for line in report.lines() if line.startswith("threshold advice: "))
    median, p90 = np.percentile(norms, [50, 90])
    assert f"a global-norm clip at p50 = {median:.3g} would have touched {np.mean(norms > median):.1%} of steps" in line
    assert f"; at p90 = {p90:.3g}, {np.mean(norms > p90):.1%};" in line and line.endswith("at max = "
                                                                                      f"{norms.max():.3g}, 0.0%")


def test_end_of_run_values_and_settings_for_the_hparams_table(run):
    logdir, report, options = run
    events = read_run(logdir)
    final = {tag: float(series[12]) for tag, series in events.items() if tag.startswith("final/")}
    assert final == pytest.approx({
        "final/eval_accuracy": report.eval_accuracy, "final/final_loss": report.final_loss,
        "final/max_pre_clip_norm": report.max_pre_clip_norm, "final/p99_pre_clip_norm": report.p99_pre_clip_norm,
        "final/clipped_fraction": report.clipped_fraction, "final/nonfinite_steps": 0.0, "final/diverged": 0.0,
        "final/skipped_spikes": 0.0, "final/rollbacks": 0.0,
    }, rel=1e-6)


def test_learning_rate_is_the_cosine_schedules_value_at_each_step(run):
    logdir, _, options = run
    rates = read_run(logdir)["learning_rate"]
    total = options.epochs  # one batch per epoch
    expected = [options.learning_rate * 0.5 * (1 + np.cos(np.pi * step / total)) for step in range(total)]
    np.testing.assert_allclose([rates[step] for step in range(total)], expected, rtol=1e-5, atol=1e-7)


def test_update_norms_under_sgd_are_the_learning_rate_times_the_clipped_gradient(run):
    """SGD without momentum moves the weights by exactly lr x the clipped gradient (lr: the schedule's value at
    the step): the logged change says so."""
    logdir, _, _ = run
    events = read_run(logdir)
    for step in range(12):
        rate, post = float(events["learning_rate"][step]), float(events["grad_norm/post_clip"][step])
        assert float(events["update/norm"][step]) == pytest.approx(rate * post, rel=2e-3), step
        for name in VARIABLES:
            expected = rate * float(events[f"grad_norm/{name}/post_clip"][step])
            assert float(events[f"update/{name}/norm"][step]) == pytest.approx(expected, rel=2e-3, abs=1e-7)


def test_by_default_update_norms_are_measured_every_twentieth_step_with_the_every_step_values(tmp_path):
    """The default cadence (the snapshot of the weights it needs costs): steps 0 and 20 of 24, each the value
    an every-step run measured at that step (the same run otherwise: the snapshot changes no weight)."""
    clip = ClipOptions(strategy="global_norm", threshold=0.5)
    tiny_run(str(tmp_path / "every"), clip=clip, epochs=24)
    (_, report), _ = tiny_run(str(tmp_path / "sampled"), clip=clip, epochs=24,
                              update_every=TelemetryOptions().update_every_n_steps)
    every_step, sampled = read_run(str(tmp_path / "every")), read_run(str(tmp_path / "sampled"))
    assert TelemetryOptions().update_every_n_steps == 20
    for tag in ["update/norm", "update/ratio", *(f"update/{name}/norm" for name in VARIABLES)]:
        assert sorted(sampled[tag]) == [0, 20], tag
        for step in (0, 20):
            assert float(sampled[tag][step]) == pytest.approx(float(every_step[tag][step]), rel=1e-6), (tag, step)
    assert sorted(sampled["grad_norm/pre_clip"]) == list(range(24))  # the rest of the telemetry: every step
    assert report.updates_measured and report.update_every_n_steps == 20
    assert "the update norm measured every 20 steps" in report.spike_order()


def test_update_norms_and_ratios_under_adam_equal_the_weights_change_computed_apart(tmp_path):
    """Adam's update is not the gradient: replayed with the same optimizer from the same weights, step by step."""
    options = TrainerOptions(hidden_units=(16,), optimizer="adam", learning_rate=0.01, lr_schedule="constant",
                             loss="mse", epochs=5, batch_size=SIZE, steps_per_call=2, seed=4)
    split = synthetic_split()
    train(split, synthetic_split(1), str(tmp_path),
          TrainingOptions(options, ClipOptions(strategy="none"),
                          TelemetryOptions(histogram_every_n_steps=0, update_every_n_steps=1)))
    events = read_run(str(tmp_path))
    model = MLP(options.hidden_units, options.init, options.seed)
    optimizer, loss_fn = make_optimizer(options, 5), make_loss("mse")
    for step in range(5):  # the full batch each step: the order of the records does not matter
        before = [v.numpy() for v in model.variables_in_order]
        with tf.GradientTape() as tape:
            loss = loss_fn(split.labels, model(split.images))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.variables_in_order), model.variables_in_order))
        after = [v.numpy() for v in model.variables_in_order]
        change = [np.linalg.norm(a - b) for a, b in zip(after, before)]
        assert float(events["update/norm"][step]) == pytest.approx(np.sqrt(np.sum(np.square(change))), rel=1e-3)
        global_weights = np.sqrt(sum(np.sum(np.square(a)) for a in after))
        assert float(events["update/ratio"][step]) == pytest.approx(np.linalg.norm(change) / global_weights, rel=1e-3)
        for name, delta, weights in zip(VARIABLES, change, after):
            assert float(events[f"update/{name}/norm"][step]) == pytest.approx(delta, rel=1e-3), (step, name)
            assert float(events[f"update/{name}/ratio"][step]) == pytest.approx(
                delta / max(np.linalg.norm(weights), 1e-12), rel=1e-3), (step, name)
    # Adam's first step moves each weight by about the learning rate, whatever its gradient's size.
    assert float(events["update/dense_0/kernel/norm"][0]) == pytest.approx(0.01 * np.sqrt(784 * 16), rel=0.05)


def test_updates_off_writes_none_and_the_report_says_nothing_of_them(tmp_path):
    options = TrainerOptions(hidden_units=(16,), optimizer="sgd", learning_rate=0.1, loss="mse", epochs=3,
                             batch_size=SIZE, steps_per_call=2, seed=3)
    _, report = train(synthetic_split(), synthetic_split(1), str(tmp_path), TrainingOptions(
        options, telemetry=TelemetryOptions(histogram_every_n_steps=0, update_every_n_steps=0)))
    assert not any(tag.startswith("update/") for tag in read_run(str(tmp_path)))
    assert not report.updates_measured and not any(line.startswith(("first spike", "spikes")) for line in report.lines())
