import gzip
import os

import numpy as np
import pytest

from components.common.errors import DataError
from components.example_gen import readers
from components.example_gen.readers import IMAGES_MAGIC, LABELS_MAGIC
from tests.idx_files import idx_bytes, synthetic, write_file, write_split


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    images, labels = synthetic(7)
    write_split(str(tmp_path), "train", images, labels, gz=gz)
    suffix = ".gz" if gz else ""
    got_images, got_labels = readers.read_idx_split(
        str(tmp_path / f"train-images-idx3-ubyte{suffix}"), str(tmp_path / f"train-labels-idx1-ubyte{suffix}")
    )
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_real_mnist_sanity_figures(real_mnist):
    images, labels = readers.read_idx_split(
        os.path.join(real_mnist, "train-images-idx3-ubyte.gz"), os.path.join(real_mnist, "train-labels-idx1-ubyte.gz")
    )
    assert images.shape == (60000, 28, 28)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert images.mean() == pytest.approx(33.3184, abs=1e-4)


def _error(tmp_path, images_data: bytes, labels_data: bytes, gz: bool = False) -> str:
    suffix = ".gz" if gz else ""
    images_path = write_file(str(tmp_path / f"train-images-idx3-ubyte{suffix}"), images_data)
    labels_path = write_file(str(tmp_path / f"train-labels-idx1-ubyte{suffix}"), labels_data)
    with pytest.raises(DataError) as err:
        readers.read_idx_split(images_path, labels_path)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_labels_file_given_as_images(tmp_path):
    images, labels = synthetic(3)
    message = _error(tmp_path, idx_bytes(labels, LABELS_MAGIC), idx_bytes(labels, LABELS_MAGIC))
    assert "expected an images file but this is a labels file" in message


def test_images_file_given_as_labels(tmp_path):
    images, labels = synthetic(3)
    message = _error(tmp_path, idx_bytes(images, IMAGES_MAGIC), idx_bytes(images, IMAGES_MAGIC))
    assert "expected a labels file but this is an images file" in message


def test_unknown_magic(tmp_path):
    images, labels = synthetic(3)
    message = _error(tmp_path, idx_bytes(images, 1234), idx_bytes(labels, LABELS_MAGIC))
    assert "not an MNIST IDX file (magic number 1234)" in message


def test_truncated_images(tmp_path):
    images, labels = synthetic(3)
    message = _error(tmp_path, idx_bytes(images, IMAGES_MAGIC)[:-10], idx_bytes(labels, LABELS_MAGIC))
    assert "header says 3 records (2352 bytes) but the file holds 2342 bytes: truncated" in message


def test_header_count_above_records(tmp_path):
    images, labels = synthetic(3)
    data = bytearray(idx_bytes(labels, LABELS_MAGIC))
    data[7] = 5  # header claims 5 labels
    message = _error(tmp_path, idx_bytes(images, IMAGES_MAGIC), bytes(data))
    assert "header says 5 records" in message and "truncated" in message


def test_counts_differ(tmp_path):
    images, labels = synthetic(3)
    message = _error(tmp_path, idx_bytes(images, IMAGES_MAGIC), idx_bytes(labels[:2], LABELS_MAGIC))
    assert "3 images but 2 labels" in message


def test_label_out_of_range(tmp_path):
    images, labels = synthetic(3)
    labels[1] = 12
    message = _error(tmp_path, idx_bytes(images, IMAGES_MAGIC), idx_bytes(labels, LABELS_MAGIC))
    assert "label 12 at record 1 is outside 0-9" in message


def test_wrong_image_size(tmp_path):
    images = np.zeros((2, 27, 27), np.uint8)
    message = _error(tmp_path, idx_bytes(images, IMAGES_MAGIC), idx_bytes(np.zeros(2, np.uint8), LABELS_MAGIC))
    assert "images are 27x27, MNIST images are 28x28" in message


def test_zero_records(tmp_path):
    message = _error(tmp_path, idx_bytes(np.zeros((0, 28, 28)), IMAGES_MAGIC), idx_bytes(np.zeros(0), LABELS_MAGIC))
    assert "the header says 0 records" in message


def test_gz_that_is_not_gzip(tmp_path):
    images, labels = synthetic(2)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(idx_bytes(images, IMAGES_MAGIC))
    with pytest.raises(DataError, match="named .gz but is not gzip data"):
        readers.read_file_bytes(str(path))


def test_truncated_gzip(tmp_path):
    images, _ = synthetic(50)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(images, IMAGES_MAGIC))[:-100])
    with pytest.raises(DataError, match="gzip data is corrupt or truncated"):
        readers.read_file_bytes(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        readers.read_file_bytes(str(tmp_path / "nope.gz"))


def _npz(tmp_path, **arrays) -> str:
    path = str(tmp_path / "mnist.npz")
    np.savez(path, **arrays)
    return path


def test_npz_splits(tmp_path):
    train, test = synthetic(5, seed=1), synthetic(3, seed=2)
    path = _npz(tmp_path, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    got = readers.read_npz_split(path, "eval")
    np.testing.assert_array_equal(got[0], test[0])
    np.testing.assert_array_equal(got[1], test[1])
    assert readers.read_npz_split(path, "train")[0].shape == (5, 28, 28)


def test_npz_missing_key(tmp_path):
    images, labels = synthetic(2)
    path = _npz(tmp_path, x_train=images, y_train=labels)
    with pytest.raises(DataError, match="missing array 'x_test'"):
        readers.read_npz_split(path, "eval")


def test_npz_wrong_dtype(tmp_path):
    images, labels = synthetic(2)
    path = _npz(tmp_path, x_train=images.astype(np.float32), y_train=labels)
    with pytest.raises(DataError, match="x_train has dtype float32, expected uint8"):
        readers.read_npz_split(path, "train")


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    images = np.empty(2, dtype=object)
    images[:] = [np.zeros((28, 28)), np.zeros((28, 28))]
    path = _npz(tmp_path, x_train=images, y_train=np.zeros(2, np.uint8))
    with pytest.raises(DataError, match="cannot load without unpickling"):
        readers.read_npz_split(path, "train")
