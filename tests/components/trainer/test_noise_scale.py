"""The gradient noise scale: the two-batch estimator recovers a known tr(Sigma) / |G|^2 from synthetic per-example
gradients, and the loop's one-process estimate (the batch's halves) is that estimator on the gradients it trains on."""
import numpy as np
import pytest
import tensorflow as tf

from components.trainer.loop import make_loss
from components.trainer.model import MLP
from components.trainer.noise_scale import NoiseScale, two_batch_estimates
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import train
from pipeline.tools.events import read_run
from tests.components.trainer.helpers import synthetic_split

DIM, BATCH = 40, 128


def _draws(rng, true_gradient, stddevs, steps):
    """Per step: the mean squared norm of the two half-batch gradients, and the whole batch's squared norm."""
    for _ in range(steps):
        examples = true_gradient + rng.normal(size=(BATCH, DIM)) * stddevs  # per-example gradients, covariance diag
        halves = examples.reshape(2, BATCH // 2, DIM).mean(axis=1)
        yield np.mean(np.sum(halves**2, axis=1)), np.sum(examples.mean(axis=0) ** 2)


@pytest.mark.slow
@pytest.mark.parametrize("seed, noise", [(0, 1.0), (1, 3.0), (2, 0.3)])
def test_the_estimator_recovers_a_known_noise_scale_within_ten_percent(seed, noise):
    rng = np.random.default_rng(seed)
    true_gradient = rng.normal(size=DIM) * 0.5
    stddevs = noise * rng.uniform(0.5, 1.5, DIM)
    known = np.sum(stddevs**2) / np.sum(true_gradient**2)  # B_simple = tr(Sigma) / |G|^2
    scale = NoiseScale()
    for small_sq, big_sq in _draws(rng, true_gradient, stddevs, 3000):
        scale.update(tf.constant(small_sq, tf.float32), tf.constant(big_sq, tf.float32), 64.0, 128.0, tf.constant(True))
    assert float(scale.value()) == pytest.approx(known, rel=0.10)


def test_one_step_estimates_are_unbiased():
    rng = np.random.default_rng(7)
    true_gradient, stddevs = rng.normal(size=DIM), rng.uniform(1, 2, DIM)
    estimates = np.array([[float(v) for v in two_batch_estimates(s, b, 64.0, 128.0)]
                          for s, b in _draws(rng, true_gradient, stddevs, 4000)])
    assert estimates[:, 0].mean() == pytest.approx(np.sum(true_gradient**2), rel=0.03)
    assert estimates[:, 1].mean() == pytest.approx(np.sum(stddevs**2), rel=0.03)


def test_nothing_known_is_nan_and_a_non_finite_step_leaves_the_averages_alone():
    scale = NoiseScale()
    assert np.isnan(float(scale.value()))
    scale.update(tf.constant(2.0), tf.constant(1.5), 64.0, 128.0, tf.constant(True))
    before = (float(scale.g2), float(scale.trace), float(scale.count))
    scale.update(tf.constant(np.nan, tf.float32), tf.constant(1.0), 64.0, 128.0, tf.constant(False))
    scale.update(tf.constant(np.inf, tf.float32), tf.constant(1.0), 64.0, 128.0, tf.constant(True))
    assert (float(scale.g2), float(scale.trace), float(scale.count)) == before
    assert float(scale.value()) == pytest.approx(float(scale.trace) / float(scale.g2))


@pytest.mark.slow
def test_the_loops_halves_feed_the_estimator_the_gradients_it_trains_on(tmp_path):
    """SGD at a negligible learning rate keeps the weights, so each step's two halves (of that epoch's shuffled
    order) have gradients computed here apart; fed to the estimator, they give the B_simple the loop logged."""
    options = TrainerOptions(hidden_units=(16,), optimizer="sgd", learning_rate=1e-30, lr_schedule="constant",
                             loss="mse", epochs=6, batch_size=64, steps_per_call=3, seed=2)
    split = synthetic_split()
    _, report = train(split, synthetic_split(1), str(tmp_path), TrainingOptions(
        options, ClipOptions(strategy="none"), TelemetryOptions(histogram_every_n_steps=0, noise_scale=True)))
    model, loss_fn = MLP(options.hidden_units, options.init, options.seed), make_loss("mse")

    def squared_norm(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images))
        return tf.add_n([tf.reduce_sum(tf.square(g)) for g in tape.gradient(loss, model.variables_in_order)])

    expected = NoiseScale()
    for epoch in range(options.epochs):  # one step an epoch: the whole split, in the epoch's order
        images, labels = next(split.epoch(options.seed + epoch, options.batch_size))
        small = (squared_norm(images[:32], labels[:32]) + squared_norm(images[32:], labels[32:])) / 2
        expected.update(small, squared_norm(images, labels), 32.0, 64.0, tf.constant(True))
    logged = read_run(str(tmp_path))["noise/b_simple"]
    assert sorted(logged) == list(range(6))
    assert float(logged[5]) == pytest.approx(float(expected.value()), rel=1e-4)
    assert report.noise_scale == pytest.approx(float(expected.value()), rel=1e-4) and report.batch_size == 64
    assert any(line.startswith("gradient noise scale B_simple ") for line in report.lines())
