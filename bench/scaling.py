"""How the pipeline's time and memory grow with the data: MNIST tiled k times (k = 1, 4, 10).

Each tile after the first is MNIST shifted by a pixel or two, so records
differ; train and eval splits are both tiled. The pipeline runs at 1 epoch
on each size in a fresh output dir, then k = 1 again (a slow spell shows as
two k = 1 rows that disagree). Per component: wall time from ML Metadata, and
peak RSS of the pipeline's process tree while the component ran
(bench.common.run_command samples it every 0.1 s). The LocalDagRunner runs every component in one
process, and memory a component frees is not always given back, so a
component's peak can include what an earlier one left: the RSS at its start
is printed beside it, and the Trainer and the Evaluator are measured again
in a process of their own (as every component runs on Kubeflow or Airflow):
a second run changes the Trainer's seed, and what comes before is cached.
Usage: python -m bench.scaling [--tiles 1,4,10] [--set section.key=value ...]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Dict, List, Tuple

import numpy as np

from bench.common import mnist_dir, run_command
from components.example_gen.readers import read_idx_split
from pipeline import metadata

COMPONENTS = ("MnistExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator")
ALONE = ("Trainer", "Evaluator")  # measured again where no other component ran before them in the process
SHIFTS = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1), (2, 0), (0, 2), (-2, 0)]  # (rows, cols)


def write_idx(path: str, array: np.ndarray, magic: int) -> None:
    """An uncompressed IDX file: magic, the dimensions, the bytes."""
    with open(path, "wb") as f:
        f.write(np.array([magic, *array.shape], dtype=">u4").tobytes())
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def tiled_mnist(k: int, root: str) -> Tuple[str, int]:
    """MNIST tiled k times into ``root/k<k>``; returns the folder and the number of records (train + eval)."""
    folder = os.path.join(root, f"k{k}")
    os.makedirs(folder)
    source = mnist_dir()
    for prefix in ("train", "t10k"):
        images, labels = read_idx_split(os.path.join(source, f"{prefix}-images-idx3-ubyte.gz"),
                                        os.path.join(source, f"{prefix}-labels-idx1-ubyte.gz"))
        tiles = [np.roll(images, shift, axis=(1, 2)) for shift in SHIFTS[:k]]
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), np.concatenate(tiles), 2051)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), np.tile(labels, k), 2049)
    return folder, 70_000 * k


def run(data_dir: str, extra: List[str]) -> Dict[str, Tuple[float, float, float]]:
    """component -> (seconds, RSS at start MiB, peak RSS MiB) for one fresh run; and, as ``<component>
    alone``, for the ALONE components of a second run in the same output dir that changes only the
    Trainer's seed: the components before it are cached, so these run in a process nothing else used."""
    output_dir = tempfile.mkdtemp(prefix="clipflow-scaling-")
    found = measured(data_dir, output_dir, extra)
    again = measured(data_dir, output_dir, [*extra, "--set=trainer.seed=1"])
    return {**found, **{f"{component} alone": again[component] for component in ALONE}}


def measured(data_dir: str, output_dir: str, extra: List[str]) -> Dict[str, Tuple[float, float, float]]:
    """component -> (seconds, RSS at start MiB, peak RSS MiB) for the components one run executed."""
    command = [sys.executable, "-m", "pipeline.run", "--data-dir", data_dir, "--output-dir", output_dir, "--quiet",
               "--set=trainer.epochs=1", *extra]
    sampler = run_command(command, f"the pipeline on {data_dir}").rss
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    found = {}
    for execution in metadata.run_executions(store, metadata.latest_run_id(store)):
        if execution.node in COMPONENTS and execution.state == "COMPLETE":  # not CACHED
            start, peak = sampler.window(execution.started, execution.started + execution.wall_seconds)
            found[execution.node] = (execution.wall_seconds, start, peak)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", default="1,4,10", help="comma-separated k (default 1,4,10)")
    parser.add_argument("--set", action="append", default=[], help="settings for every run")
    args = parser.parse_args()
    sizes = [int(k) for k in args.tiles.split(",")]
    root = tempfile.mkdtemp(prefix="clipflow-tiles-")
    data = {k: tiled_mnist(k, root) for k in sorted(set(sizes))}
    order = [*sizes, sizes[0]]  # the first size again at the end
    results = [(k, run(data[k][0], [f"--set={s}" for s in args.set])) for k in order]
    print("records: train + eval; s/1k rec: seconds per 1,000 of them; RSS in MiB")
    print(f"{'component':<17}{'k':>4}{'records':>9}{'seconds':>9}{'s/1k rec':>9}{'RSS start':>11}{'RSS peak':>10}")
    rows = [*COMPONENTS, *(f"{component} alone" for component in ALONE)]
    for component in rows:
        for k, found in results:
            seconds, start, peak = found[component]
            records = data[k][1]
            print(f"{component:<17}{k:>4}{records:>9}{seconds:>9.2f}{1000 * seconds / records:>9.3f}"
                  f"{start:>11.0f}{peak:>10.0f}")
    base = {c: min(found[c][0] for k, found in results if k == sizes[0]) for c in rows}
    base_rss = {c: min(found[c][2] for k, found in results if k == sizes[0]) for c in rows}
    largest = max(sizes)
    top = next(found for k, found in results if k == largest)
    scale = data[largest][1] / data[sizes[0]][1]
    print(f"\nk = {largest} against k = {sizes[0]} (the better of its two runs):")
    for component in rows:
        per_record = top[component][0] / scale / base[component]
        rss = top[component][2] / base_rss[component]
        print(f"  {component:<17} time per record {per_record:5.2f}x (target <= 1.2)   peak RSS {rss:5.2f}x"
              + (" (target <= 1.5)" if component.split()[0] in ("MnistExampleGen", "Trainer") else ""))
    print(f"\n(tiled data in {root})")


if __name__ == "__main__":
    main()
