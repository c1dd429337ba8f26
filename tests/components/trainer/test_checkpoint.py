"""Interrupted training resumes from its checkpoint and ends where an uninterrupted run ends."""
import glob
import os
import signal

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from components.trainer import checkpoint
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import train
from pipeline.tools.events import read_run
from tests.components.trainer.helpers import spilled, synthetic_split

pytestmark = pytest.mark.slow  # trains, stops and resumes real models

SPLITS = (synthetic_split(), synthetic_split(1))


def _train(logdir, epochs, checkpoints=None, strategy="percentile", splits=SPLITS, clip=None, every=5):
    options = TrainerOptions(hidden_units=(16,), optimizer="adam", learning_rate=0.01, epochs=epochs, batch_size=16,
                             steps_per_call=3, checkpoint_every_n_steps=every, seed=1)
    return train(*splits, str(logdir), TrainingOptions(options, clip or ClipOptions(strategy=strategy, window=8),
                 TelemetryOptions(histogram_every_n_steps=4)), checkpoints=checkpoints)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted run (default settings, in memory) that resumed runs must end like: (model, report)."""
    return _train(tmp_path_factory.mktemp("reference"), epochs=3)


class Interrupted(Exception):
    pass


def _interrupted(logdir, checkpoints, monkeypatch, strategy="percentile", saves=1, splits=SPLITS, **settings):
    """A run killed right after its ``saves``-th checkpoint: the first is at the first call
    boundary past step 5, step 7 (calls end at histogram steps and epoch ends too)."""
    save = checkpoint.Checkpointer.save
    done = []

    def save_then_stop(self, *args):
        save(self, *args)
        done.append(args[0])
        if len(done) == saves:
            raise Interrupted

    monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_stop)
    with pytest.raises(Interrupted):
        _train(logdir, epochs=3, checkpoints=checkpoints, strategy=strategy, splits=splits, **settings)
    monkeypatch.undo()


def test_resume_continues_exactly(tmp_path, monkeypatch, uninterrupted):
    reference, reference_report = uninterrupted
    checkpoints = str(tmp_path / "ckpt")
    _interrupted(tmp_path / "interrupted", checkpoints, monkeypatch)
    assert sorted(os.listdir(checkpoints)) == ["checkpoint", "ckpt-7.data-00000-of-00001", "ckpt-7.index",
                                               "history-7.npz", "logdir.json"]
    resumed, report = _train(tmp_path / "resumed", epochs=3, checkpoints=checkpoints)
    assert report.resumed_from_step == 7
    assert report.steps == reference_report.steps == 12
    for got, want in zip(resumed.variables_in_order, reference.variables_in_order):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
    assert report.max_pre_clip_norm == pytest.approx(reference_report.max_pre_clip_norm, rel=1e-5)
    assert report.clipped_fraction == reference_report.clipped_fraction
    assert not os.path.exists(checkpoints)  # removed once training completed


def test_a_streamed_split_resumes_exactly_too(tmp_path, monkeypatch, uninterrupted):
    """Resumed mid-epoch, a spilled split's epoch skips to the batch it stopped at, across its blocks."""
    splits = (spilled(SPLITS[0], str(tmp_path / "train"), buckets=7), spilled(SPLITS[1], str(tmp_path / "eval"), 3))
    in_memory = uninterrupted[0]
    reference, reference_report = _train(tmp_path / "reference", epochs=3, splits=splits)
    checkpoints = str(tmp_path / "ckpt")
    _interrupted(tmp_path / "interrupted", checkpoints, monkeypatch, saves=2, splits=splits)
    resumed, report = _train(tmp_path / "resumed", epochs=3, checkpoints=checkpoints, splits=splits)
    assert 5 < report.resumed_from_step < 12 and report.resumed_from_step % 4  # mid-epoch (4 batches an epoch)
    assert report.steps == reference_report.steps == 12
    for got, want in zip(resumed.variables_in_order, reference.variables_in_order):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
    assert report.eval_accuracy == pytest.approx(reference_report.eval_accuracy)
    assert not np.allclose(in_memory.variables_in_order[0].numpy(), reference.variables_in_order[0].numpy())


def test_resumed_logs_hold_each_step_once(tmp_path, monkeypatch):
    checkpoints = str(tmp_path / "ckpt")
    _interrupted(tmp_path / "interrupted", checkpoints, monkeypatch, strategy="global_norm")
    _train(tmp_path / "resumed", epochs=3, checkpoints=checkpoints, strategy="global_norm")
    events = read_run(str(tmp_path / "resumed"))
    assert sorted(events["grad_norm/pre_clip"]) == list(range(12))  # 0-6 copied, 7-11 trained again
    assert sorted(events["grad_hist/dense_0/kernel/pre_clip"]) == [0, 4, 8]
    assert sorted(read_run(str(tmp_path / "resumed"), "eval")["accuracy"]) == [4, 8, 12]
    # One layout and one HParams session, the resumed run's own (not the interrupted run's as well).
    records = [value for path in glob.glob(str(tmp_path / "resumed" / "train" / "*tfevents*"))
               for record in tf.data.TFRecordDataset(path)
               for value in event_pb2.Event.FromString(record.numpy()).summary.value]
    assert [v.tag for v in records].count("custom_scalars__config__") == 1
    sessions = [hparams_metadata.parse_session_start_info_plugin_data(v.metadata.plugin_data.content)
                for v in records if v.tag == hparams_metadata.SESSION_START_INFO_TAG]
    assert [s.group_name for s in sessions] == ["trainer-resumed"]


def _truncate(path):
    """What a kill or a full disk during the write leaves: the data file cut short."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 3])


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, monkeypatch, capsys, uninterrupted):
    reference, reference_report = uninterrupted
    checkpoints = str(tmp_path / "ckpt")
    _interrupted(tmp_path / "interrupted", checkpoints, monkeypatch, saves=2)
    steps = sorted(int(name.split("-")[1].split(".")[0]) for name in os.listdir(checkpoints) if name.endswith(".index"))
    assert len(steps) == 2 and {n for n in os.listdir(checkpoints) if n.startswith("history-")} == {
        f"history-{step}.npz" for step in steps}
    _truncate(os.path.join(checkpoints, f"ckpt-{steps[1]}.data-00000-of-00001"))
    resumed, report = _train(tmp_path / "resumed", epochs=3, checkpoints=checkpoints)
    assert report.resumed_from_step == steps[0]
    assert f"Trainer: the checkpoint at step {steps[1]} cannot be read (" in capsys.readouterr().out
    for got, want in zip(resumed.variables_in_order, reference.variables_in_order):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)  # deterministic: same model
    assert report.eval_accuracy == pytest.approx(reference_report.eval_accuracy)


def test_no_readable_checkpoint_trains_afresh(tmp_path, monkeypatch, capsys, uninterrupted):
    reference, _ = uninterrupted
    checkpoints = str(tmp_path / "ckpt")
    _interrupted(tmp_path / "interrupted", checkpoints, monkeypatch)
    _truncate(os.path.join(checkpoints, "ckpt-7.data-00000-of-00001"))
    resumed, report = _train(tmp_path / "resumed", epochs=3, checkpoints=checkpoints)
    assert report.resumed_from_step is None and report.steps == 12
    out = capsys.readouterr().out
    assert "Trainer: the checkpoint at step 7 cannot be read (" in out and out.count("training afresh") == 1
    for got, want in zip(resumed.variables_in_order, reference.variables_in_order):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)


def test_key_follows_settings_and_inputs():
    a = checkpoint.checkpoint_dir("/r", {"trainer": {"epochs": 3}}, ["/x", "/y"])
    assert a == checkpoint.checkpoint_dir("/r", {"trainer": {"epochs": 3}}, ["/y", "/x"])
    assert a != checkpoint.checkpoint_dir("/r", {"trainer": {"epochs": 4}}, ["/x", "/y"])
    assert a != checkpoint.checkpoint_dir("/r", {"trainer": {"epochs": 3}}, ["/x", "/z"])


# ZClip past its warm-up of 4 steps, inside the spike guard (half a window of 4: active from the third step).
SPIKE_AWARE = ClipOptions(strategy="zclip", warmup_steps=4, first_step_scale=1.0, skip_spikes=True, spike_window=4,
                          spike_sigmas=1.0)


@pytest.fixture(scope="module")
def spike_aware_reference(tmp_path_factory):
    """The uninterrupted run the resumed ones must end at."""
    model, report = _train(tmp_path_factory.mktemp("reference"), epochs=3, clip=SPIKE_AWARE, every=2)
    assert 0 < report.clipped_fraction < 1 and report.skipped_spikes > 0  # both act in this run
    return model, report


@pytest.mark.parametrize("saves", [1, 2, 3, 4])
def test_zclip_and_the_spike_guard_resume_to_the_uninterrupted_weights(tmp_path, monkeypatch, saves, spike_aware_reference):
    """Their EMAs, windows and counters are in the checkpoint: killed at any of its saves (each a few steps
    apart, from inside the warm-up on), a resumed run clips and skips as the uninterrupted run did."""
    reference, reference_report = spike_aware_reference
    checkpoints = str(tmp_path / "ckpt")
    _interrupted(tmp_path / "interrupted", checkpoints, monkeypatch, saves=saves, clip=SPIKE_AWARE, every=2)
    resumed, report = _train(tmp_path / "resumed", epochs=3, checkpoints=checkpoints, clip=SPIKE_AWARE, every=2)
    assert report.resumed_from_step is not None
    assert (report.clipped_fraction, report.skipped_spikes) == (reference_report.clipped_fraction,
                                                                 reference_report.skipped_spikes)
    for got, want in zip(resumed.variables_in_order, reference.variables_in_order):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-6)


def test_a_sigterm_mid_save_waits_for_the_save(tmp_path, monkeypatch):
    """Sent after the history is written and before the checkpoint is: the stop takes effect once both are."""
    def stop(signum, _frame):
        raise Interrupted(signum)

    manager_save = tf.train.CheckpointManager.save

    def signal_then_save(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return manager_save(self, *args, **kwargs)

    weights = tf.Variable([1.0, 2.0])
    saver = checkpoint.Checkpointer(str(tmp_path), {"weights": weights}, every_n_steps=5)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", signal_then_save)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(Interrupted):
            saver.save(7, 0, 7, checkpoint.History(losses=np.ones(7, np.float32), norms=np.ones(7, np.float32)), "logs")
    finally:
        signal.signal(signal.SIGTERM, previous)
    monkeypatch.undo()
    weights.assign([0.0, 0.0])
    restored = checkpoint.Checkpointer(str(tmp_path), {"weights": weights}, every_n_steps=5).restore()
    assert (restored.step, restored.batch, restored.logdir, len(restored.history.losses)) == (7, 7, "logs", 7)
    np.testing.assert_array_equal(weights.numpy(), [1.0, 2.0])
