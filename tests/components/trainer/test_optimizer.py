"""The Trainer's optimizers (Keras' legacy, fused kernels) update exactly as the current Keras ones."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from components.trainer.options import TrainerOptions
from components.trainer.session import make_optimizer

pytestmark = pytest.mark.slow  # steps both optimizers side by side

CURRENT = {"sgd": tf_keras.optimizers.SGD, "adam": tf_keras.optimizers.Adam}


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_same_updates_as_the_current_keras_optimizer(name):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) * scale for scale in (1.0, 0.1, 10.0, 1.0, 0.01)]
    results = []
    ours = make_optimizer(TrainerOptions(optimizer=name, learning_rate=0.05, lr_schedule="constant"), len(grads))
    for optimizer in (ours, CURRENT[name](0.05)):
        variable = tf.Variable(start)

        @tf.function  # as in the training loop
        def step(grad, optimizer=optimizer, variable=variable) -> None:
            optimizer.apply_gradients([(grad, variable)])

        for grad in grads:
            step(tf.constant(grad))
        results.append(variable.numpy())
    assert not np.allclose(results[0], start)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
