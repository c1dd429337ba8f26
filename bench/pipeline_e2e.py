"""Wall time of the full pipeline on all of MNIST: fresh, cached, and after a Trainer-only change.

Per-component times come from ML Metadata (via summary.json); totals are the
command's own wall clock. With --reference, TFX's own MNIST example pipeline
(tfx/examples/mnist, 784-64-64-10 Keras model) runs in the same process
tree on the same data as the baseline, and the ratios are printed.
Usage: python -m bench.pipeline_e2e [--reference] [--set section.key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

from bench.common import mnist_dir

NON_TRAINER = ("MnistExampleGen", "StatisticsGen", "Transform", "Evaluator")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_pipeline(output_dir: str, extra: List[str]) -> Tuple[float, Dict]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.run", "--data-dir", mnist_dir(), "--output-dir", output_dir, *extra],
        cwd=REPO, capture_output=True, text=True,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"pipeline failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(output_dir, "summary.json")) as f:
        return wall, json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="settings for all three runs")
    parser.add_argument("--reference", action="store_true", help="also run TFX's MNIST example as the baseline")
    args = parser.parse_args()
    extra = [a for s in args.set for a in ("--set", s)]
    output_dir = tempfile.mkdtemp(prefix="clipflow-e2e-")
    runs = {
        "fresh": run_pipeline(output_dir, extra),
        "cached re-run": run_pipeline(output_dir, extra),
        "Trainer change": run_pipeline(output_dir, [*extra, "--set", "trainer.seed=1"]),
    }
    nodes = list(runs["fresh"][1]["components"])
    print(f"{'component':<20}" + "".join(f"{name:>16}" for name in runs))
    for node in nodes:
        cells = []
        for _, summary in runs.values():
            info = summary["components"][node]
            cells.append(f"{info['wall_seconds']:9.2f} {info['state'][:8]:>6}")
        print(f"{node:<20}" + "".join(f"{c:>16}" for c in cells))
    stage_sum = lambda summary, names: sum(summary["components"][n]["wall_seconds"] for n in names)  # noqa: E731
    print(f"{'sum of components':<20}" + "".join(f"{stage_sum(s, nodes):16.2f}" for _, s in runs.values()))
    print(f"{'command wall time':<20}" + "".join(f"{w:16.2f}" for w, _ in runs.values()))
    fresh_wall, fresh = runs["fresh"]
    change_wall, change = runs["Trainer change"]
    non_trainer = stage_sum(fresh, NON_TRAINER)
    print(f"\nExampleGen + StatisticsGen + Transform + Evaluator, fresh: {non_trainer:.2f} s (target <= 16)")
    print(f"whole pipeline, fresh: {fresh_wall:.2f} s (target <= 40), eval accuracy {fresh['eval_accuracy']:.4f} (>= 0.97)")
    until_evaluated = stage_sum(change, ("Trainer", "Evaluator"))
    print(f"Trainer change: Trainer + Evaluator {until_evaluated:.2f} s, command {change_wall:.2f} s (target <= 15)")
    if args.reference:
        from bench.reference_mnist import run_reference  # noqa: PLC0415

        reference = run_reference(mnist_dir())
        print("\nTFX MNIST example (reference), same data, same machine:")
        for node, seconds in reference["components"].items():
            print(f"  {node:<22} {seconds:8.2f}")
        print(f"  {'command wall time':<22} {reference['wall']:8.2f}")
        ref_stages = sum(v for k, v in reference["components"].items() if k.split(".")[0] in
                         ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"))
        print(f"ratio, non-Trainer stages: ours / reference = {non_trainer / ref_stages:.2f} (target <= 0.5)")
        print(f"ratio, whole pipeline: ours / reference = {fresh_wall / reference['wall']:.2f} (target <= 0.5)")
    print(f"\n(outputs in {output_dir})")


if __name__ == "__main__":
    main()
