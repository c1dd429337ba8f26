"""The Trainer's splits: the real transform graph applied, in memory below the budget and spilled above
it, each epoch's order a function of the records and the seed alone."""
import collections
import os
import tempfile

import numpy as np
import pytest
import tensorflow_transform as tft

from components.example_gen.readers import read_idx_split
from components.example_gen.records import serialize_examples
from components.trainer import data
from components.trainer.options import TelemetryOptions, TrainerOptions, TrainingOptions
from components.trainer.session import train
from tests.components.trainer.helpers import transform_output, write_records
from tests.idx_files import synthetic

COUNT = 50


@pytest.fixture(scope="module")
def transform(tmp_path_factory) -> tft.TFTransformOutput:
    return transform_output(str(tmp_path_factory.mktemp("transform") / "graph"))


@pytest.fixture
def files(tmp_path):
    """The same COUNT records as one file (``a``) and, in another order, as two shards (``b``)."""
    images, labels = synthetic(COUNT, seed=3)
    flat = images.reshape(COUNT, -1)
    records = list(serialize_examples(flat, labels))
    shuffled = [records[i] for i in np.random.default_rng(0).permutation(COUNT)]
    write_records(str(tmp_path / "a.gz"), records)
    write_records(str(tmp_path / "b-0.gz"), shuffled[:20])
    write_records(str(tmp_path / "b-1.gz"), shuffled[20:])
    return [str(tmp_path / "a.gz")], [str(tmp_path / "b-*.gz")], list(zip(map(tuple, flat.astype(np.int64)), labels))


def _concat(blocks):
    blocks = list(blocks)
    return (np.concatenate([b[0].numpy() for b in blocks]), np.concatenate([b[1].numpy() for b in blocks]),
            [int(b[1].shape[0]) for b in blocks])


def _pairs(images, labels):
    """(pixels, label) as written: the transform divides by 255."""
    return collections.Counter(zip(map(tuple, (images * 255).round().astype(np.int64)), labels))


IN_MEMORY, SPILLED = COUNT * 3144, COUNT * 3144 - 1  # budgets: the split's size, and one byte less


def test_a_split_is_held_up_to_its_budget_and_spilled_past_it_into_a_temporary_folder(files, transform):
    a, _, _ = files
    assert data.row_bytes(transform) == 784 * 4 + 8 == 3144
    with data.open_split(a, transform, IN_MEMORY) as split:
        assert isinstance(split, data.InMemorySplit) and split.size == COUNT
    with data.open_split(a, transform, SPILLED) as split:
        assert isinstance(split, data.SpilledSplit) and split.size == COUNT
        assert len(split.paths) == 5  # a quarter of the budget each: ceil(4 * size / budget)
        folder = os.path.dirname(split.paths[0])
        assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in split.paths)
        assert sum(os.path.getsize(p) for p in split.paths) == COUNT * (784 * 4 + 16)
    assert not os.path.exists(folder)


@pytest.mark.parametrize("budget", [IN_MEMORY, SPILLED, COUNT * 3144 // 5], ids=["in_memory", "5_buckets", "20_buckets"])
def test_same_records_in_any_order_and_sharding_give_the_same_epochs(files, transform, budget):
    a, b, written = files
    with data.open_split(a, transform, budget) as split_a, data.open_split(b, transform, budget) as split_b:
        for seed in (0, 1):
            x_a, y_a, _ = _concat(split_a.epoch(seed, batch_size=8))
            x_b, y_b, _ = _concat(split_b.epoch(seed, batch_size=8))
            np.testing.assert_array_equal(x_a, x_b)
            np.testing.assert_array_equal(y_a, y_b)
            assert _pairs(x_a, y_a) == collections.Counter(written)  # each record once, transformed
        x_0, _, _ = _concat(split_a.epoch(0, batch_size=8))
        assert not np.array_equal(x_0, x_a)  # another seed, another order
        x_all, y_all, _ = _concat(split_a.blocks())
        assert _pairs(x_all, y_all) == collections.Counter(written)


def test_a_spilled_epoch_comes_in_blocks_of_whole_batches(files, transform):
    a, _, _ = files
    with data.open_split(a, transform, COUNT * 3144 // 5) as split:
        assert len(split.paths) == 20  # about 2.5 records a bucket: most blocks carry rows into the next
        for batch_size in (1, 3, 8, 64):
            _, _, sizes = _concat(split.epoch(0, batch_size))
            assert sum(sizes) == COUNT
            assert all(size % batch_size == 0 for size in sizes[:-1]), sizes


@pytest.mark.slow
def test_streamed_training_is_as_accurate_as_in_memory(mnist_slice, transform, tmp_path):
    """The Trainer's default model on a slice of real MNIST (4,000 train, 1,000 eval), 10 epochs,
    with the training split in memory and spilled into 8 buckets. The two modes order batches
    differently, which alone moves one seed's accuracy by up to about 0.005; the mean over three
    seeds is compared."""
    for prefix, name in (("train", "train"), ("t10k", "eval")):
        images, labels = read_idx_split(os.path.join(mnist_slice, f"{prefix}-images-idx3-ubyte.gz"),
                                        os.path.join(mnist_slice, f"{prefix}-labels-idx1-ubyte.gz"))
        write_records(str(tmp_path / f"{name}.gz"), serialize_examples(images, labels))
    budgets = {"in memory": 2**30, "spilled": 4000 * data.row_bytes(transform) // 2}
    accuracy = {}
    for mode, budget in budgets.items():
        with data.open_split([str(tmp_path / "train.gz")], transform, budget) as train_split, \
                data.open_split([str(tmp_path / "eval.gz")], transform, 2**30) as eval_split:
            assert len(getattr(train_split, "paths", ())) == (8 if mode == "spilled" else 0)
            accuracy[mode] = [
                train(train_split, eval_split, str(tmp_path / f"{mode}-{seed}"), TrainingOptions(
                    TrainerOptions(epochs=10, seed=seed), telemetry=TelemetryOptions(histogram_every_n_steps=0)))[1].eval_accuracy
                for seed in range(3)
            ]
    assert min(accuracy["in memory"] + accuracy["spilled"]) > 0.9, accuracy
    assert abs(np.mean(accuracy["in memory"]) - np.mean(accuracy["spilled"])) <= 0.005, accuracy


def test_no_room_to_spill_is_one_line_naming_the_fixes(files, transform, tmp_path, monkeypatch):
    a, _, _ = files
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_folder))  # where TMPDIR points
    with pytest.raises(data.SpillFailed) as failure, data.open_split(a, transform, SPILLED):
        pass
    message = str(failure.value)
    assert "\n" not in message and message.startswith(f"cannot stream a split of 0.1 MB from {not_a_folder} (")
    assert "point TMPDIR at a larger local disk" in message and "trainer.memory_budget_mb" in message
