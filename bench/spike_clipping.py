"""Clipping without a threshold, measured: ZClip against no clipping, AutoClip, AGC and fixed global-norm
thresholds, on full MNIST, over several seeds, for two recipes.

Each recipe runs the sweep pipeline (``python -m pipeline.tools.experiment sweep``) once per seed into
one output folder (ingest, statistics and Transform run once, then come from the cache); each point's
eval accuracy per seed comes from its Evaluator. Printed and written as Markdown (docs/benchmarks.md):
per point, the mean, standard deviation, minimum and maximum of eval accuracy, the seeds it diverged
on, and the fraction of steps clipped.

Usage: python -m bench.spike_clipping [--recipes explode,default] [--seeds 0,1,2,3] [--output-dir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from bench.common import mnist_dir

STRATEGIES = "none,global_norm,percentile,agc,zclip"


def run_sweep(recipe: str, seed: int, output_dir: str) -> List[Dict]:
    """One sweep of ``recipe`` at ``trainer.seed = seed``; its points (summary.json)."""
    command = [sys.executable, "-m", "pipeline.tools.experiment", "sweep", "--recipe", recipe, "--strategies", STRATEGIES,
               "--data-dir", mnist_dir(), "--output-dir", output_dir, "--set", f"trainer.seed={seed}"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    if result.returncode != 0:
        sys.exit(f"the {recipe} sweep at seed {seed} failed: {(result.stderr or result.stdout).strip().splitlines()[-1]}")
    print(f"{recipe}, seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    with open(os.path.join(output_dir, "summary.json")) as f:
        return json.load(f)["points"]


def table(recipe: str, runs: Dict[int, List[Dict]]) -> str:
    """A Markdown table: a row per point, over the seeds."""
    seeds = sorted(runs)
    rows = [f"### `{recipe}` recipe, seeds {', '.join(map(str, seeds))}\n",
            "| point | mean eval accuracy | std | min | max | diverged on | mean fraction clipped |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for index, point in enumerate(runs[seeds[0]]):
        results = [runs[seed][index] for seed in seeds]
        accuracies = [r["eval_accuracy"] for r in results]
        reports = [r["gradient_report"] for r in results]
        diverged = sum(report["diverged_at_step"] is not None for report in reports)
        rows.append(
            f"| {point['point']} | {statistics.mean(accuracies):.4f} | {statistics.stdev(accuracies):.4f} "
            f"| {min(accuracies):.4f} | {max(accuracies):.4f} | {diverged} of {len(seeds)} "
            f"| {statistics.mean(report['clipped_fraction'] for report in reports):.1%} |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="explode,default")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--output-dir", default="")
    args = parser.parse_args()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="spike-clipping-")
    tables = []
    for recipe in args.recipes.split(","):
        runs = {int(seed): run_sweep(recipe, int(seed), os.path.join(output_dir, recipe)) for seed in args.seeds.split(",")}
        with open(os.path.join(output_dir, f"{recipe}.json"), "w") as f:
            json.dump(runs, f, indent=2)
        tables.append(table(recipe, runs))
        print(tables[-1], flush=True)
    with open(os.path.join(output_dir, "spike_clipping.md"), "w") as f:
        f.write("\n".join(tables))
    print(f"written: {os.path.join(output_dir, 'spike_clipping.md')}")


if __name__ == "__main__":
    main()
