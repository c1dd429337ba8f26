"""Shared helpers for benchmarks: find real MNIST, time a callable, run a command and measure it."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import psutil
import scipy.stats

import components  # noqa: F401  (Keras choice before TensorFlow loads)
from components.example_gen.readers import read_idx_split

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> Tuple[float, float, float]:
    """The ratio of rates ``a`` to ``b`` measured in pairs (round i's ``a[i]`` beside ``b[i]``): the geometric
    mean of the rounds' ratios and its 95% interval (Student's t on their logs). Pairs, not the best of
    each: a slow spell of the VM moves both rates of a round alike, so it cancels in their ratio."""
    logs = np.log(np.asarray(a, np.float64) / np.asarray(b, np.float64))
    if len(logs) < 2:
        raise ValueError(f"a paired ratio needs 2+ rounds (got {len(logs)})")
    half = scipy.stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
    mean = logs.mean()
    return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half))


def best_of(repeats: int, fn: Callable[[], int]) -> float:
    """Steps per second: the best of ``repeats`` runs of ``fn`` (which returns its step count)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        steps = fn()
        best = max(best, steps / (time.perf_counter() - start))
    return best


class RssSampler:
    """The RSS of a process and all its descendants, summed, every ``interval`` seconds, in a thread: the
    one meaning of peak RSS in these benchmarks (a process tree's, as Beam's or TFX's children add to it)."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.process, self.interval = psutil.Process(pid), interval
        self.samples: List[Tuple[float, float]] = []  # (time.time(), MiB)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:  # the process (or a child) ended between listing and reading
                continue
            self.samples.append((time.time(), rss / 2**20))
            self.stop.wait(self.interval)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()

    def peak(self) -> float:
        return max((mib for _, mib in self.samples), default=0.0)

    def window(self, start: float, end: float) -> Tuple[float, float]:
        """RSS at ``start`` and the peak in [start, end] (MiB); a window shorter than the sampling
        interval has the sample before it as its peak."""
        before = [mib for t, mib in self.samples if t <= start] or [self.samples[0][1]]
        inside = [mib for t, mib in self.samples if start <= t <= end] or before[-1:]
        return before[-1], max(inside)


@dataclasses.dataclass
class Measured:
    wall: float  # seconds, the command's own clock
    stdout: str
    rss: RssSampler  # its samples, for windows inside the run

    @property
    def peak_rss(self) -> float:
        """MiB, the process tree's."""
        return self.rss.peak()


def run_command(command: List[str], what: str, cwd: str = REPO, env: Optional[dict] = None) -> Measured:
    """Runs ``command`` to its end, measuring its wall time and its process tree's peak RSS; a failure
    ends the benchmark with one line naming ``what`` failed and the command's last line."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = RssSampler(process.pid)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    sampler.finish()
    if process.returncode != 0:
        last = (stderr or stdout).strip().splitlines() or [f"exit status {process.returncode}"]
        sys.exit(f"{what} failed: {last[-1]}")
    return Measured(wall, stdout, sampler)
