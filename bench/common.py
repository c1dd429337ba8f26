"""Shared helpers for benchmarks: find real MNIST, time a callable."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable

import numpy as np

import components  # noqa: F401  (Keras choice before TensorFlow loads)
from components.example_gen.readers import read_idx_split

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


def mnist_dir() -> str:
    for candidate in (os.environ.get("MNIST_DATA_DIR"), SHARED_MNIST):
        if candidate and os.path.isdir(candidate):
            return os.path.abspath(candidate)
    sys.exit("benchmarks need real MNIST: set MNIST_DATA_DIR or put ../shared/data/mnist beside the checkout")


def load_train(scale: float = 255.0, prefix: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """A split of MNIST as the default Transform makes it (images / 255); ``prefix`` t10k: the eval split."""
    folder = mnist_dir()
    images, labels = read_idx_split(
        os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz")
    )
    return images.reshape(len(images), -1).astype(np.float32) / scale, labels.astype(np.int64)


def best_of(repeats: int, fn: Callable[[], int]) -> float:
    """Steps per second: the best of ``repeats`` runs of ``fn`` (which returns its step count)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        steps = fn()
        best = max(best, steps / (time.perf_counter() - start))
    return best
