"""Write small MNIST-format files for tests (never copies the real data into the repo)."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import tensorflow as tf

from components.example_gen.readers import IMAGES_MAGIC, LABELS_MAGIC, read_idx_split

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(f">{array.ndim + 1}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_file(path: str, data: bytes) -> str:
    """Any file system TensorFlow opens (a local path, ram://...); gzipped when the name ends in .gz."""
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(gzip.compress(data) if path.endswith(".gz") else data)
    return path


def write_split(folder: str, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    suffix = ".gz" if gz else ""
    write_file(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), idx_bytes(images, IMAGES_MAGIC))
    write_file(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), idx_bytes(labels, LABELS_MAGIC))


def synthetic(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), rng.integers(0, 10, count, dtype=np.uint8)


def real_mnist_dir() -> str | None:
    """The full MNIST folder: $MNIST_DATA_DIR, else ../shared/data/mnist beside the checkout."""
    for candidate in (os.environ.get("MNIST_DATA_DIR"), SHARED_MNIST):
        if candidate and os.path.isfile(os.path.join(candidate, "train-labels-idx1-ubyte.gz")):
            return os.path.abspath(candidate)
    return None


def write_real_slice(source: str, folder: str, train: int, test: int) -> str:
    """The first ``train`` / ``test`` records of real MNIST, as gzipped IDX files."""
    for prefix, count in (("train", train), ("t10k", test)):
        images, labels = read_idx_split(
            os.path.join(source, f"{prefix}-images-idx3-ubyte.gz"), os.path.join(source, f"{prefix}-labels-idx1-ubyte.gz")
        )
        write_split(folder, prefix, images[:count], labels[:count])
    return folder
