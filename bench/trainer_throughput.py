"""Training steps/s: the tutorial's eager loop vs Keras fit vs our loop, with and without telemetry.

Same data (full MNIST train, /255), model (784-512-256-10), batch 128, SGD
lr 0.01, MSE on one-hot labels, in one process. Prints steps/s and the
ratios the telemetry issue sets as targets:
  (d) full telemetry >= 1.0 x (b) Keras fit,  >= 5 x (a) eager,  >= 0.9 x (c) ours, no telemetry.
Usage: python -m bench.trainer_throughput [--steps N] [--repeats R]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from typing import Callable

import numpy as np
import tensorflow as tf
import tf_keras

from bench.common import best_of, load_train
from components.trainer import clipping
from components.trainer.loop import TrainingLoop, make_loss
from components.trainer.model import MLP
from components.trainer.options import TelemetryOptions, TrainerOptions
from components.trainer.telemetry import Telemetry

BATCH = 128
LR = 0.01
CLIP = 15.0
STEPS_PER_CALL = TrainerOptions().steps_per_call


def eager_tutorial(x: tf.Tensor, y: tf.Tensor) -> Callable[[int], None]:
    """(a) GradientTape per step, eagerly, printing the norms as the tutorial does."""
    model = MLP((512, 256))
    variables = model.variables_in_order
    optimizer = tf_keras.optimizers.SGD(LR)
    loss_fn = make_loss("mse")
    sink = open(os.devnull, "w")

    def run(steps: int) -> None:
        for step in range(steps):
            start = (step * BATCH) % (int(x.shape[0]) - BATCH)
            xb, yb = x[start : start + BATCH], y[start : start + BATCH]
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb))
            grads = tape.gradient(loss, variables)
            clipped, norm = tf.clip_by_global_norm(grads, CLIP)
            optimizer.apply_gradients(zip(clipped, variables))
            print(f"step {step}: loss {float(loss):.4f} grad norm {float(norm):.3f}", file=sink)

    return run


def keras_fit(x: np.ndarray, y: np.ndarray, steps_per_execution: int) -> Callable[[int], None]:
    """(b) tf-keras model.fit with SGD(global_clipnorm=15)."""
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Dense(512, activation="relu", input_shape=(784,)),
            tf_keras.layers.Dense(256, activation="relu"),
            tf_keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=tf_keras.optimizers.SGD(LR, global_clipnorm=CLIP),
        loss="mse",
        steps_per_execution=steps_per_execution,
    )
    one_hot = np.eye(10, dtype=np.float32)[y]

    def run(steps: int) -> None:
        model.fit(x[: steps * BATCH], one_hot[: steps * BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=True)

    return run


def our_loop(x: tf.Tensor, y: tf.Tensor, telemetry: bool, logdir: str) -> Callable[[int], None]:
    """(c)/(d): components.trainer.loop with or without clipping and telemetry."""
    model = MLP((512, 256))
    strategy = clipping.ClipByGlobalNorm(CLIP) if telemetry else clipping.NoClip()
    writer = Telemetry(logdir, model.variable_names, TelemetryOptions()) if telemetry else None
    loop = TrainingLoop(model, tf_keras.optimizers.SGD(LR), make_loss("mse"), strategy, writer, BATCH, 10)

    def run(steps: int) -> None:
        done = 0
        while done < steps:  # whole epochs, cut short at ``steps``
            done += len(loop.run_epoch(x[: (steps - done) * BATCH], y[: (steps - done) * BATCH], STEPS_PER_CALL, done).losses)
        if writer:
            writer.flush()

    return run


def steps_per_second(run: Callable[[int], None], steps: int, repeats: int) -> float:
    """Best of ``repeats`` timed runs, after one untimed warm-up (tracing)."""
    run(steps)
    return best_of(repeats, lambda: (run(steps), steps)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=450)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    images, labels = load_train()
    x, y = tf.constant(images), tf.constant(labels)
    steps = args.steps
    logdir = tempfile.mkdtemp(prefix="clipflow-bench-")

    results = {"(a) eager tutorial loop": steps_per_second(eager_tutorial(x, y), min(steps, 150), args.repeats)}
    keras = {spe: steps_per_second(keras_fit(images, labels, spe), steps, args.repeats) for spe in (1, 10, 50, 200)}
    best_spe = max(keras, key=keras.get)
    results[f"(b) keras fit, steps_per_execution={best_spe}"] = keras[best_spe]
    results["(c) ours, no clip, no telemetry"] = steps_per_second(our_loop(x, y, False, logdir), steps, args.repeats)
    results["(d) ours, global_norm clip, full telemetry"] = steps_per_second(
        our_loop(x, y, True, logdir), steps, args.repeats
    )
    print(f"{'variant':<48} {'steps/s':>9}")
    for name, rate in results.items():
        print(f"{name:<48} {rate:9.1f}")
    a, b, c, d = results.values()
    print(f"\n(d)/(b) = {d / b:.2f}  (target >= 1.0)")
    print(f"(d)/(a) = {d / a:.2f}  (target >= 5)")
    print(f"(d)/(c) = {d / c:.2f}  (target >= 0.9)")
    print(f"keras steps_per_execution tried: " + ", ".join(f"{k}: {v:.1f}" for k, v in keras.items()))


if __name__ == "__main__":
    main()
