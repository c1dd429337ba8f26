"""The MLP (default 784-512-256-10, ReLU), as a plain ``tf.Module``.

No Keras: the custom loop needs only variables and a forward pass, and a
``tf.Module`` saves with ``tf.saved_model.save`` whichever Keras is bound.
"""
from __future__ import annotations

from typing import List, Sequence

import tensorflow as tf

from components.common.typed import pick

NUM_PIXELS = 784
NUM_CLASSES = 10


# init name -> initializer for a seed; truncated_normal (stddev 0.1) is the exploding-gradient demo's.
INITIALIZERS = {
    "glorot_uniform": lambda seed: tf.initializers.GlorotUniform(seed=seed),
    "truncated_normal": lambda seed: tf.initializers.TruncatedNormal(stddev=0.1, seed=seed),
}


class MLP(tf.Module):
    """Dense layers with ReLU between them; returns logits."""

    def __init__(self, hidden_units: Sequence[int], init: str = "glorot_uniform", seed: int = 0):
        super().__init__(name="mlp")
        widths = [NUM_PIXELS, *hidden_units, NUM_CLASSES]
        self.kernels: List[tf.Variable] = []
        self.biases: List[tf.Variable] = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            init_fn = pick(INITIALIZERS, init, "trainer.init")(seed + i)
            self.kernels.append(tf.Variable(init_fn([fan_in, fan_out]), name=f"dense_{i}/kernel"))
            self.biases.append(tf.Variable(tf.zeros([fan_out]), name=f"dense_{i}/bias"))

    @property
    def variables_in_order(self) -> List[tf.Variable]:
        """kernel_0, bias_0, kernel_1, ...: a stable order for gradients and tags."""
        return [v for pair in zip(self.kernels, self.biases) for v in pair]

    @property
    def variable_names(self) -> List[str]:
        """``dense_0/kernel`` etc.: the names used in TensorBoard tags."""
        return [v.name.split(":")[0] for v in self.variables_in_order]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            x = tf.matmul(x, kernel) + bias
            if i < len(self.kernels) - 1:
                x = tf.nn.relu(x)
        return x
