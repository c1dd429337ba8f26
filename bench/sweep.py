"""An 8-point sweep as one pipeline against the same 8 points as separate ``pipeline.run`` commands.

Full MNIST, the default recipe, 3 epochs. In one bench run: the sweep command
(fresh output dir), the 8 commands each in a fresh output dir (what a user
pays today), the 8 commands sharing one output dir (ingest and Transform
cached after the first), then the sweep again; the ratios use the mean of the
two sweeps. Wall time is each command's own clock; peak RSS is its process
tree's (bench.common.run_command).
Each point's eval accuracy is printed from every variant: the same settings
on the same data must give the same model.
Usage: python -m bench.sweep [--set section.key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List, Tuple

from bench.common import mnist_dir, run_command

STRATEGIES = ("none", "global_norm", "norm", "agc")
THRESHOLDS = (0.25, 0.5, 1.0)  # for global_norm and norm: 1 + 3 + 3 + 1 = 8 points
EPOCHS = 3


def points() -> List[Tuple[str, List[str]]]:
    """(the sweep's point name, the same point as pipeline.run settings)."""
    found = []
    for strategy in STRATEGIES:
        for threshold in THRESHOLDS if strategy in ("norm", "global_norm") else (None,):
            name = strategy if threshold is None else f"{strategy}-{threshold:g}"
            settings = [f"clip.strategy={strategy}"] + ([f"clip.threshold={threshold}"] if threshold else [])
            found.append((name, settings))
    return found


def summary(output_dir: str) -> Dict:
    with open(os.path.join(output_dir, "summary.json")) as f:
        return json.load(f)


def run_sweep(extra: List[str]) -> Tuple[float, float, Dict[str, float]]:
    output_dir = tempfile.mkdtemp(prefix="clipflow-sweep-")
    measured = run_command([
        sys.executable, "-m", "pipeline.tools.experiment", "sweep", "--data-dir", mnist_dir(), "--output-dir", output_dir,
        "--strategies", ",".join(STRATEGIES), "--thresholds", ",".join(map(str, THRESHOLDS)), "--epochs", str(EPOCHS),
        *extra,
    ], "the sweep")
    return measured.wall, measured.peak_rss, {p["point"]: p["eval_accuracy"] for p in summary(output_dir)["points"]}


def run_separately(extra: List[str], shared_dir: bool) -> Tuple[List[float], List[float], Dict[str, float]]:
    walls, peaks, accuracies = [], [], {}
    shared = tempfile.mkdtemp(prefix="clipflow-separate-")
    for name, settings in points():
        output_dir = shared if shared_dir else tempfile.mkdtemp(prefix="clipflow-separate-")
        measured = run_command([sys.executable, "-m", "pipeline.run", "--data-dir", mnist_dir(), "--output-dir", output_dir,
                                "--quiet", f"--set=trainer.epochs={EPOCHS}", *(f"--set={s}" for s in settings), *extra],
                               f"the run of {name}")
        walls.append(measured.wall)
        peaks.append(measured.peak_rss)
        accuracies[name] = summary(output_dir)["eval_accuracy"]
    return walls, peaks, accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="settings for every command")
    args = parser.parse_args()
    extra = [f"--set={s}" for s in args.set]
    first = run_sweep(extra)
    fresh = run_separately(extra, shared_dir=False)
    shared = run_separately(extra, shared_dir=True)
    second = run_sweep(extra)
    print(f"{'point':<18}{'sweep':>10}{'sweep again':>13}{'separate':>10}{'shared dir':>12}   eval accuracy")
    for name, _ in points():
        cells = [first[2][name], second[2][name], fresh[2][name], shared[2][name]]
        print(f"{name:<18}" + "".join(f"{c:>{w}.4f}" for c, w in zip(cells, (10, 13, 10, 12))))
    sweep_wall, sweep_rss = (first[0] + second[0]) / 2, max(first[1], second[1])
    print(f"\nsweep command: {first[0]:.1f} s and {second[0]:.1f} s; peak RSS {first[1]:.0f} and {second[1]:.0f} MiB")
    for label, (walls, peaks, _) in (("8 commands, fresh output dirs", fresh), ("8 commands, one shared output dir", shared)):
        print(f"{label}: {sum(walls):.1f} s in all ({min(walls):.1f}-{max(walls):.1f} s each); "
              f"peak RSS {min(peaks):.0f}-{max(peaks):.0f} MiB")
    single_rss = max(fresh[1])
    print(f"\nratio, wall time: sweep / 8 fresh commands = {sweep_wall / sum(fresh[0]):.2f} (target <= 0.5); "
          f"sweep / 8 commands in one output dir = {sweep_wall / sum(shared[0]):.2f}")
    print(f"ratio, peak RSS: sweep / a single run's = {sweep_rss / single_rss:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
