"""Clipping without a threshold, measured: ZClip against no clipping, AutoClip, AGC and fixed global-norm
thresholds, on full MNIST, over several seeds, for two recipes.

Each recipe is one sweep pipeline over the seeds (``python -m pipeline.tools.experiment sweep --seeds``):
ingest, statistics and Transform once, then a Trainer and an Evaluator per setting and seed. Its report
(report.md, the figure) gives per setting the mean, standard deviation, minimum and maximum of eval
accuracy, the seeds it diverged on and the fraction of steps clipped, and the verdict
(pipeline/verdict.py); this prints those lines and each sweep's wall time.

Usage: python -m bench.spike_clipping [--recipes explode,default] [--seeds 0,1,2,3] [--output-dir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from bench.common import mnist_dir, run_command
from pipeline.summary import setting_line

STRATEGIES = "none,global_norm,percentile,agc,zclip"


def run_sweep(recipe: str, seeds: str, output_dir: str) -> dict:
    """The sweep of ``recipe`` over ``seeds``; its summary.json."""
    command = [sys.executable, "-m", "pipeline.tools.experiment", "sweep", "--recipe", recipe, "--strategies", STRATEGIES,
               "--seeds", seeds, "--data-dir", mnist_dir(), "--output-dir", output_dir]
    wall = run_command(command, f"the {recipe} sweep").wall
    print(f"{recipe}, seeds {seeds}: {wall:.0f} s; report: {output_dir}/report.md", flush=True)
    with open(os.path.join(output_dir, "summary.json")) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="explode,default")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--output-dir", default="")
    args = parser.parse_args()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="spike-clipping-")
    for recipe in args.recipes.split(","):
        summary = run_sweep(recipe, args.seeds, os.path.join(output_dir, recipe))
        print("\n".join(f"  {setting_line(setting)}" for setting in summary["settings"]))
        print(f"  verdict: {summary['verdict']['sentence']}", flush=True)


if __name__ == "__main__":
    main()
