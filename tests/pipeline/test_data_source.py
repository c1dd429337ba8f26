import hashlib
import os

import numpy as np
import pytest

from components.common.errors import DataError
from pipeline import data_source
from tests.idx_files import synthetic, write_split


def _idx_dir(path) -> str:
    path.mkdir()
    write_split(str(path), "train", *synthetic(3))
    return str(path)


def test_order_flag_then_env_then_cache(tmp_path):
    flag_dir, env_dir = _idx_dir(tmp_path / "flag"), _idx_dir(tmp_path / "env")
    cache = tmp_path / "mnist.npz"
    np.savez(cache, x_train=np.zeros((1, 28, 28), np.uint8))
    assert data_source.resolve_data_dir(flag_dir, env_dir, str(cache)) == flag_dir
    assert data_source.resolve_data_dir("", env_dir, str(cache)) == env_dir
    assert data_source.resolve_data_dir("", None, str(cache)) == str(cache)


def test_folder_with_npz(tmp_path):
    np.savez(tmp_path / "mnist.npz", x=np.zeros(1))
    assert data_source.mnist_in(str(tmp_path)) == str(tmp_path / "mnist.npz")


def test_folder_without_mnist(tmp_path):
    with pytest.raises(DataError, match="holds neither MNIST IDX files"):
        data_source.mnist_in(str(tmp_path))
    with pytest.raises(DataError, match="no such folder; pass --data-dir"):
        data_source.mnist_in(str(tmp_path / "missing"))


def test_download_verified_by_sha256(tmp_path):
    source = tmp_path / "served.npz"
    source.write_bytes(b"pretend npz")
    destination = str(tmp_path / "cache" / "mnist.npz")
    url = "file://" + str(source)
    good = hashlib.sha256(b"pretend npz").hexdigest()
    assert data_source.download_npz(destination, url, good) == destination
    assert open(destination, "rb").read() == b"pretend npz"


def test_download_with_wrong_sha256_keeps_nothing(tmp_path):
    source = tmp_path / "served.npz"
    source.write_bytes(b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="has sha256 .* expected 0000; nothing was kept"):
        data_source.download_npz(str(cache / "mnist.npz"), "file://" + str(source), "0000")
    assert os.listdir(cache) == []


def test_download_failure_says_how_to_point_at_local_files(tmp_path):
    with pytest.raises(DataError, match="could not download .*pass --data-dir DIR"):
        data_source.download_npz(str(tmp_path / "c" / "mnist.npz"), "file://" + str(tmp_path / "absent"), "0")
