"""A batch scaled by 1e4 at a chosen step, on a slice of real MNIST: it stops training today; the spike
guard skips it; a rollback returns to a checkpoint, skips the batches past it and ends with a model the
Evaluator's bar would bless; rollbacks are deterministic, resumable, bounded, and leave the optimizer
untouched on a skip."""
import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from components.example_gen.readers import read_idx_split
from components.trainer import checkpoint, clipping
from components.trainer.data import InMemorySplit
from components.trainer.loop import TrainingLoop, make_loss
from components.trainer.model import MLP
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.report import GradientReport
from components.trainer.session import make_optimizer, train
from pipeline.tools.events import read_run
from tests.components.trainer.helpers import SpikedSplit

pytestmark = pytest.mark.slow  # trains real models through a spike

BATCHES = 32  # per epoch: 2048 records, batches of 64
# SGD at 0.1 without clipping: what a x1e4 batch drives to NaN (Adam bounds its update and survives one).
# The first NaN comes 8 steps after the spike (a checkpoint in between holds ruined weights): 16 steps back.
OPTIONS = TrainerOptions(optimizer="sgd", learning_rate=0.1, lr_schedule="constant", batch_size=64, epochs=5,
                         steps_per_call=4, checkpoint_every_n_steps=8, seed=0, rollback_steps_back=16,
                         rollback_skip_batches=8, max_rollbacks=2)
CLIP = ClipOptions(strategy="none")
SPIKE = dict(seed=3, batch=5)  # epoch 3 (seed = trainer.seed + epoch), batch 5: step 101
SPIKE_STEP = 3 * BATCHES + 5
BAR = 0.8  # an evaluator.accuracy_threshold for this slice: 5 epochs without a spike reach 0.864


def _split(data_dir: str, prefix: str, size: int) -> InMemorySplit:
    images, labels = read_idx_split(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"),
                                    os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return InMemorySplit(tf.constant(images[:size].reshape(size, -1).astype(np.float32) / 255.0),
                         tf.constant(labels[:size].astype(np.int64)))


@pytest.fixture(scope="module")
def splits(real_mnist):
    return SpikedSplit(_split(real_mnist, "train", BATCHES * 64), **SPIKE), _split(real_mnist, "t10k", 1000)


def _train(splits, logdir, checkpoints=None, clip=CLIP, **settings):
    return train(*splits, str(logdir), TrainingOptions(dataclasses.replace(OPTIONS, **settings), clip,
                 TelemetryOptions(histogram_every_n_steps=0)), checkpoints=None if checkpoints is None else str(checkpoints))


@pytest.fixture(scope="module")
def rolled_back(splits, tmp_path_factory):
    """The spiked run with rollback on: (model, report, log folder)."""
    logdir = tmp_path_factory.mktemp("rollback")
    return (*_train(splits, logdir, on_divergence="rollback"), logdir)


def test_the_spike_stops_training_today(splits, tmp_path):
    _, report = _train(splits, tmp_path)
    assert report.diverged_at_step is not None and report.first_nonfinite_step > SPIKE_STEP
    assert report.eval_accuracy < 0.2 and report.rollbacks == []


def test_a_rollback_returns_to_a_checkpoint_skips_past_the_spike_and_ends_above_the_bar(rolled_back, splits, tmp_path):
    model, report, logdir = rolled_back
    assert report.diverged_at_step is None and report.eval_accuracy >= BAR
    [rollback] = report.rollbacks
    assert rollback["to_step"] == 3 * BATCHES < SPIKE_STEP  # epoch 3, batch 0: before the spike
    assert rollback["at_step"] - rollback["to_step"] >= OPTIONS.rollback_steps_back and rollback["skipped_batches"] == 8
    # Steps count every step computed: the abandoned stretch, then the rest of training from (epoch 3, batch 8).
    assert report.steps == rollback["at_step"] + 1 + (5 * BATCHES - (3 * BATCHES + 8))
    assert "rolled back: diverged at step" in "\n".join(report.lines())
    report.write(str(tmp_path))
    assert GradientReport.read(str(tmp_path)).rollbacks == report.rollbacks  # what summary.json reads
    events = read_run(str(logdir))
    assert {int(s): float(v) for s, v in events["rollback/count"].items()} == {0: 0.0, rollback["at_step"] + 1: 1.0}
    again, _ = _train(splits, tmp_path / "again", on_divergence="rollback")  # deterministic: the same model
    for a, b in zip(model.variables_in_order, again.variables_in_order):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_run_killed_after_a_rollback_resumes_to_the_same_model(rolled_back, splits, tmp_path, monkeypatch, capsys):
    """Killed at the first regular save after the rollback's own save."""
    save, forget, saves, rolled = checkpoint.Checkpointer.save, checkpoint.Checkpointer.forget_after, [], []

    def save_then_die(self, step, *args):
        save(self, step, *args)
        saves.append(step)
        if len(rolled) == 2:
            raise KeyboardInterrupt
        if rolled:
            rolled.append(step)

    def forget_and_note(self, step):
        forget(self, step)
        rolled.append(True)

    monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_die)
    monkeypatch.setattr(checkpoint.Checkpointer, "forget_after", forget_and_note)
    with pytest.raises(KeyboardInterrupt):
        _train(splits, tmp_path / "killed", tmp_path / "ckpt", on_divergence="rollback")
    monkeypatch.undo()
    assert f"rolled back to the checkpoint at step {3 * BATCHES} and skipping the next 8 batches (rollback 1 of 2)" \
        in capsys.readouterr().out
    kept = sorted(int(n.split("-")[1].split(".")[0]) for n in os.listdir(tmp_path / "ckpt") if n.endswith(".index"))
    assert kept[-3:] == [3 * BATCHES, saves[-2], saves[-1]]  # none of the abandoned stretch's is left
    assert saves[-2] > rolled_back[1].rollbacks[0]["at_step"]  # the rollback's own save, numbered on
    resumed, report = _train(splits, tmp_path / "resumed", tmp_path / "ckpt", on_divergence="rollback")
    assert report.resumed_from_step == saves[-1] and report.rollbacks == rolled_back[1].rollbacks
    assert report.steps == rolled_back[1].steps
    for a, b in zip(resumed.variables_in_order, rolled_back[0].variables_in_order):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)


def test_once_the_rollbacks_are_spent_training_stops_in_one_line(splits, tmp_path, capsys):
    """Skipping 2 batches from batch 0 leaves the spike (batch 5) ahead: the second divergence finds none left."""
    _, report = _train(splits, tmp_path, on_divergence="rollback", rollback_skip_batches=2, max_rollbacks=1)
    assert len(report.rollbacks) == 1 and report.diverged_at_step is not None
    out = capsys.readouterr().out
    assert f"Trainer: training diverged at step {report.diverged_at_step}; trainer.max_rollbacks=1 rollbacks spent: " \
           "stopping\n" in out


def test_the_spike_guard_skips_the_spike_and_training_goes_on(splits, tmp_path):
    _, report = _train(splits, tmp_path, clip=dataclasses.replace(CLIP, skip_spikes=True, spike_window=16))
    assert report.skipped_spikes >= 1 and report.nonfinite_steps == 0 and report.diverged_at_step is None
    assert report.eval_accuracy >= BAR


def test_a_skipped_step_leaves_the_optimizer_bit_identical(splits):
    """OLMo-core's skip once advanced Adam's step count (effective learning rate x2.2): here a skipped step
    changes no weight, no slot and not the iteration count, so the bias correction and schedule stand."""
    options = dataclasses.replace(OPTIONS, optimizer="adam", learning_rate=0.001, lr_schedule="cosine")
    model = MLP(options.hidden_units, options.init, options.seed)
    guard = clipping.make_strategy(ClipOptions(strategy="global_norm", skip_spikes=True, spike_window=8))
    loop = TrainingLoop(model, make_optimizer(options, total_steps=100), make_loss(options.loss), guard, None, 64)
    images, labels = next(splits[0].epoch(SPIKE["seed"], 64))  # batch 5 of this block is the spike
    loop.run_steps(images, labels, tf.constant(0), tf.constant(5), tf.constant(False))
    state = [v.numpy().copy() for v in loop.optimizer.variables()] + [v.numpy().copy() for v in model.variables_in_order]
    assert int(loop.optimizer.iterations.numpy()) == 5
    assert len(loop.optimizer.variables()) == 1 + 2 * len(model.variables_in_order)  # iterations, Adam's m and v
    loop.run_steps(images, labels, tf.constant(5), tf.constant(1), tf.constant(False))
    assert int(loop.skipped_spikes.numpy()) == 1 and int(loop.step.numpy()) == 6
    after = [v.numpy() for v in loop.optimizer.variables()] + [v.numpy() for v in model.variables_in_order]
    for before, now in zip(state, after):
        np.testing.assert_array_equal(before, now)
    loop.run_steps(images, labels, tf.constant(6), tf.constant(1), tf.constant(False))  # the next step applies
    assert int(loop.optimizer.iterations.numpy()) == 6
