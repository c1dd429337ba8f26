"""Training steps/s: the tutorial's eager loop vs Keras fit vs our loop, with and without telemetry.

Same data (full MNIST train, /255), model (784-512-256-10), batch 128 (the
targets' batch; --batch sets another for every variant), SGD lr 0.01, MSE on
one-hot labels, in one process. Prints steps/s and the
ratios the telemetry issue sets as targets:
  (d) full telemetry >= 1.0 x (b) Keras fit,  >= 5 x (a) eager,  >= 0.9 x (c) ours, no telemetry;
the spike issue's: (e) zclip and (f) global_norm inside the spike guard >= 0.97 x (d); the update
telemetry's cost: (d) >= 0.97 x (g), (d) without the update norms (telemetry.update_every_n_steps = 0), and
(i), (d) with them every step ((g'), (g) built again, reads the noise between two instances of one loop,
which the rounds' interval leaves out); and what the gradient noise scale costs: (h), (d) with
telemetry.noise_scale (the batch differentiated in halves).
The performance issue's: (d) >= 0.8 x (m), the matrix products of a step of this model alone, in one
traced loop, one step after another (or (d) >= 1,000 steps/s); beside it, what bounds any loop: (u), (m) with
SGD's update of each weight, the least a training step adds to its products, and (o), (c) at hidden widths 8,
what the loop's ops cost apart from their sizes.
Each ratio is printed twice: of each variant's best round, and round by round (``paired_ratio``: the
geometric mean of the rounds' ratios and its 95% interval: a slow spell moves both rates of a round alike).
Usage: python -m bench.trainer_throughput [--steps N] [--rounds R] [--only spike|telemetry|limit] [--batch B]
(--only: (d) with (e) and (f), or with (g), (g'), (h) and (i), or with (c), (m), (u) and (o), alone, for more rounds
in the same time.)
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from bench.common import best_of, load_train, paired_ratio
from components.trainer import clipping
from components.trainer.data import InMemorySplit
from components.trainer.loop import TrainingLoop, make_loss
from components.trainer.model import MLP
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions
from components.trainer.session import make_optimizer
from components.trainer.telemetry import Telemetry

BATCH = 128  # the default; --batch sets another for every variant
LR = 0.01
CLIP = 15.0
STEPS_PER_CALL = TrainerOptions().steps_per_call


def step_flop(batch: int) -> int:
    """(m)'s products, FLOPs a step: 308 M at batch 128."""
    return 2 * batch * (3 * (784 * 512 + 512 * 256 + 256 * 10) - 784 * 512)


# The variants, as the bench prints them.
EAGER = "(a) eager tutorial loop"
BARE = "(c) ours, no clip, no telemetry"
FULL = "(d) ours, global_norm clip, full telemetry"
ZCLIP = "(e) ours, zclip, full telemetry"
GUARDED = "(f) ours, global_norm in the spike guard, full telemetry"
NO_UPDATES = "(g) ours, as (d) without the update norms"
SAME_AGAIN = "(g') as (g), a second instance of the same loop"
BOTH_BASELINES = "(g)(g'): their geometric mean, round by round"
NOISE = "(h) ours, as (d) with the gradient noise scale"
EVERY_UPDATE = "(i) ours, as (d) with the update norms every step"
LIMIT = "(m) the step's matrix products alone (the limit)"
LIMIT_UPDATE = "(u) (m) and SGD's update of each weight"
TINY = "(o) as (c) at hidden widths 8: the ops, not their sizes"


def eager_tutorial(x: tf.Tensor, y: tf.Tensor, batch: int) -> Callable[[int], None]:
    """(a) GradientTape per step, eagerly, printing the norms as the tutorial does."""
    model = MLP((512, 256))
    variables = model.variables_in_order
    optimizer = tf_keras.optimizers.SGD(LR)
    loss_fn = make_loss("mse")
    sink = open(os.devnull, "w")

    def run(steps: int) -> None:
        for step in range(steps):
            start = (step * batch) % (int(x.shape[0]) - batch + 1)
            xb, yb = x[start : start + batch], y[start : start + batch]
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb))
            grads = tape.gradient(loss, variables)
            clipped, norm = tf.clip_by_global_norm(grads, CLIP)
            optimizer.apply_gradients(zip(clipped, variables))
            print(f"step {step}: loss {float(loss):.4f} grad norm {float(norm):.3f}", file=sink)

    return run


def keras_fit(x: np.ndarray, y: np.ndarray, batch: int, steps_per_execution: int) -> Callable[[int], None]:
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
        model.fit(x[: steps * batch], one_hot[: steps * batch], batch_size=batch, epochs=1, verbose=0, shuffle=True)

    return run


def our_loop(x: tf.Tensor, y: tf.Tensor, clip: ClipOptions, telemetry: Optional[TelemetryOptions],
             logdir: str, batch: int, hidden: Tuple[int, ...] = (512, 256)) -> Callable[[int], None]:
    """(c)-(i), (o): components.trainer.loop with a clip strategy (inside its guards, as the Trainer builds
    it), with telemetry (these options) or without (None)."""
    model = MLP(hidden)
    strategy = clipping.make_strategy(clip)
    writer = Telemetry(logdir, model.variable_names, telemetry) if telemetry else None
    # The Trainer's own optimizer, at a constant rate as Keras fit's (b) (so no schedule length).
    optimizer = make_optimizer(TrainerOptions(optimizer="sgd", learning_rate=LR, lr_schedule="constant"), total_steps=1)
    loop = TrainingLoop(model, optimizer, make_loss("mse"), strategy, writer, batch)

    whole = int(x.shape[0]) // batch  # an epoch's whole batches: a short last batch would be a cheaper step

    def run(steps: int) -> None:
        done = 0
        while done < steps:  # epochs of whole batches, cut short at ``steps``
            rows = min(steps - done, whole) * batch
            split = InMemorySplit(x[:rows], y[:rows])
            done += len(loop.run_epoch(split, STEPS_PER_CALL, done).losses)
        if writer:
            writer.flush()

    return run


def matmul_limit(batch: int, update: bool = False) -> Callable[[int], None]:
    """(m) The limit: the matrix products of one training step of the model and nothing else (three
    forward, three weight gradients, two input gradients: the first layer's input needs none), in
    one traced while loop, on tensors of a step's shapes (``step_flop`` counts them). One step after
    another, as training runs them: a step's products need the weights the step before updated, so
    the loop may not overlap iterations (``parallel_iterations=1``; its default, 10, lets two steps'
    products share the cores, a rate no training loop can reach).

    (u), ``update``: each weight gradient applied by SGD's own kernel as it is made, the least a
    training step adds to its products (the weights read from variables and updated; no bias,
    activation, loss or norm): (u)/(m) is the ceiling of any training loop made of TensorFlow ops on
    this machine."""
    widths = (784, 512, 256, 10)
    weights = [tf.random.normal([a, b]) for a, b in zip(widths[:-1], widths[1:])]
    if update:
        weights = [tf.Variable(w) for w in weights]
    activations = [tf.random.normal([batch, width]) for width in widths]

    @tf.function(autograph=False)
    def products(steps: tf.Tensor) -> tf.Tensor:
        def step(i: tf.Tensor, total: tf.Tensor):
            values = [w.read_value() for w in weights] if update else weights  # the step's, before its update
            h = activations[0]
            for w in values:
                h = tf.matmul(h, w)
            total += tf.reduce_sum(h)
            grad = activations[-1]
            for layer in reversed(range(len(weights))):
                weight_grad = tf.matmul(activations[layer], grad, transpose_a=True)
                if update:  # a tiny rate: the weights stay near their start, as far from overflow as (m)'s
                    tf.raw_ops.ResourceApplyGradientDescent(var=weights[layer].handle, alpha=1e-9, delta=weight_grad)
                else:
                    total += weight_grad[0, 0]
                if layer:
                    grad = tf.matmul(grad, values[layer], transpose_b=True)  # the layer input's gradient
            return i + 1, total  # every product feeds the result or an update, so none is pruned

        return tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), tf.constant(0.0)), parallel_iterations=1)[1]

    return lambda steps: products(tf.constant(steps)).numpy()


def interleaved_rates(runs: Dict[str, Tuple[Callable[[int], None], int]], rounds: int) -> Dict[str, List[float]]:
    """Steps/s per variant in each of ``rounds`` timed runs, after one warm-up each.

    Rounds interleave the variants, so a slow spell of this shared VM lands on
    all of them alike instead of on whichever variant happened to be running;
    every other round runs them in reverse (a, b, c, c, b, a, ...), so a drift
    within a round favours none of them.
    """
    for run, steps in runs.values():
        run(steps)  # tracing, first-call costs
    rates = {name: [] for name in runs}
    for round_ in range(rounds):
        for name in list(runs)[:: -1 if round_ % 2 else 1]:
            run, steps = runs[name]
            rates[name].append(best_of(1, lambda: (run(steps), steps)[1]))
    return rates


def ratio_line(label: str, rates: Dict[str, List[float]], a: str, b: str, target: str) -> str:
    """``a``'s rate over ``b``'s: the best round of each, and round by round (``paired_ratio``)."""
    mean, low, high = paired_ratio(rates[a], rates[b])
    return (f"{label} = {max(rates[a]) / max(rates[b]):.3f} best of each; {mean:.3f} round by round "
            f"(95% interval {low:.3f}-{high:.3f}, {len(rates[a])} rounds)  ({target})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=450)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("spike", "telemetry", "limit"),
                        help="only (d), (e) and (f); or (d), (g), (g'), (h) and (i); or (c), (d), (m), (u) and (o)")
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"batch size of every variant (default {BATCH}, the one the targets are set at)")
    args = parser.parse_args()
    images, labels = load_train()
    x, y = tf.constant(images), tf.constant(labels)
    steps, batch = args.steps, args.batch
    if not 1 <= batch <= len(images):
        parser.error(f"--batch is {batch}: it must be between 1 and the {len(images)} training images")
    if not args.only and steps * batch > len(images):
        parser.error(f"--steps x --batch is {steps * batch}: Keras fit's rows take one pass over the "
                     f"{len(images)} images at the most; lower one, or pick a variant group with --only")
    logdir = tempfile.mkdtemp(prefix="clipflow-bench-")

    def ours(clip: ClipOptions, telemetry: Optional[TelemetryOptions], **options) -> Tuple[Callable[[int], None], int]:
        return our_loop(x, y, clip, telemetry, logdir, batch, **options), steps

    keras_names = {spe: f"(b) keras fit, steps_per_execution={spe}" for spe in (1, 10, 50, 200)}
    global_norm, full = ClipOptions(strategy="global_norm", threshold=CLIP), TelemetryOptions()
    d = {FULL: ours(global_norm, full)}
    spike_aware = {
        ZCLIP: ours(ClipOptions(strategy="zclip"), full),
        GUARDED: ours(dataclasses.replace(global_norm, skip_spikes=True), full),
    }
    telemetry = {
        NO_UPDATES: ours(global_norm, dataclasses.replace(full, update_every_n_steps=0)),
        SAME_AGAIN: ours(global_norm, dataclasses.replace(full, update_every_n_steps=0)),
        EVERY_UPDATE: ours(global_norm, dataclasses.replace(full, update_every_n_steps=1)),
        NOISE: ours(global_norm, dataclasses.replace(full, noise_scale=True)),
    }
    c = {BARE: ours(ClipOptions(strategy="none"), None)}
    limit = {
        LIMIT: (matmul_limit(batch), steps),
        LIMIT_UPDATE: (matmul_limit(batch, update=True), steps),
        TINY: ours(ClipOptions(strategy="none"), None, hidden=(8, 8)),
    }
    runs = {"spike": {**d, **spike_aware}, "telemetry": {**d, **telemetry}, "limit": {**c, **d, **limit}}.get(args.only) or {
        EAGER: (eager_tutorial(x, y, batch), min(steps, 150)),
        **{name: (keras_fit(images, labels, batch, spe), steps) for spe, name in keras_names.items()},
        **c, **d, **spike_aware, **telemetry, **limit,
    }
    rates = interleaved_rates(runs, args.rounds)
    if SAME_AGAIN in rates:  # (d)'s baseline for the target: both instances of (g), round by round
        rates[BOTH_BASELINES] = list(np.sqrt(np.multiply(rates[NO_UPDATES], rates[SAME_AGAIN])))
    print(f"{'variant':<56} {'steps/s':>9}  (the best round; the median)")
    for name, rate in rates.items():
        print(f"{name:<56} {max(rate):9.1f}  {np.median(rate):9.1f}")
    print()
    lines = [
        ("(e)/(d)", ZCLIP, FULL, "target >= 0.97"),
        ("(f)/(d)", GUARDED, FULL, "target >= 0.97"),
        ("(d)/(g)", FULL, NO_UPDATES, "target >= 0.97: the update norms, at their default cadence, cost at most 3%"),
        ("(d)/(g)(g')", FULL, BOTH_BASELINES, "the same target against both instances of (g), the steadier reading"),
        ("(i)/(g)", EVERY_UPDATE, NO_UPDATES, "what they cost measured every step; no target"),
        ("(g')/(g)", SAME_AGAIN, NO_UPDATES, "two instances of one loop: the noise between loops, which no interval "
                                             "above includes; no target"),
        ("(h)/(d)", NOISE, FULL, "what the gradient noise scale costs; no target"),
        ("(d)/(m)", FULL, LIMIT, "target >= 0.8, or (d) >= 1000 steps/s"),
        ("(u)/(m)", LIMIT_UPDATE, LIMIT, "the ceiling of a training loop of TensorFlow ops here; no target"),
    ]
    for label, a, b, target in lines:
        if a in rates and b in rates:
            print(ratio_line(label, rates, a, b, target))
    m = rates.get(LIMIT)
    if m:
        print(f"(m) = {max(m) * step_flop(batch) / 1e9:.0f} GFLOP/s at its best round")
        step_ms = ", ".join(f"{name[:3]} {1e3 / np.median(rates[name]):.2f}" for name in (LIMIT, LIMIT_UPDATE, TINY, BARE, FULL))
        print(f"ms a step (median round): {step_ms}")
    if args.only:
        return
    best_keras = max(keras_names.values(), key=lambda name: max(rates[name]))  # Keras at its best steps_per_execution
    print(ratio_line("(d)/(b)", rates, FULL, best_keras, "target >= 1.0; (b) = the best Keras row"))
    print(ratio_line("(d)/(a)", rates, FULL, EAGER, "target >= 5"))
    print(ratio_line("(d)/(c)", rates, FULL, BARE, "target >= 0.9"))


if __name__ == "__main__":
    main()
