"""Wall time of the full pipeline on all of MNIST: fresh, cached, and after a Trainer-only change.

Per-component times come from ML Metadata (via summary.json); totals are the
command's own wall clock. With --reference, TFX's own MNIST example pipeline
(tfx/examples/mnist, 784-64-64-10 Keras model) runs in the same process
tree on the same data as the baseline, and the ratios are printed.
With --multi-processing, one more fresh run uses Beam's DirectRunner with 2
worker processes, and the data stages are compared with the in-memory run.
Usage: python -m bench.pipeline_e2e [--reference] [--multi-processing] [--set section.key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List, Tuple

from bench.common import mnist_dir, run_command

NON_TRAINER = ("MnistExampleGen", "StatisticsGen", "Transform", "Evaluator")
DATA_STAGES = ("MnistExampleGen", "StatisticsGen", "Transform")


def run_pipeline(output_dir: str, extra: List[str]) -> Tuple[float, Dict]:
    command = [sys.executable, "-m", "pipeline.run", "--data-dir", mnist_dir(), "--output-dir", output_dir, *extra]
    wall = run_command(command, "the pipeline").wall
    with open(os.path.join(output_dir, "summary.json")) as f:
        return wall, json.load(f)


def print_multi_processing(in_memory: Dict, extra: List[str]) -> None:
    """The data stages with Beam's in-memory DirectRunner (the fresh run above) vs 2 worker processes."""
    beam_args = ["--beam-arg=--direct_running_mode=multi_processing", "--beam-arg=--direct_num_workers=2"]
    wall, multi = run_pipeline(tempfile.mkdtemp(prefix="clipflow-e2e-mp-"), [*extra, *beam_args])
    print("\nDirectRunner in memory (fresh run above) vs multi-processing, 2 workers (fresh output dir):")
    for node in DATA_STAGES:
        seconds = [run["components"][node]["wall_seconds"] for run in (in_memory, multi)]
        print(f"  {node:<18}{seconds[0]:10.2f}{seconds[1]:10.2f}")
    sums = [sum(s["components"][n]["wall_seconds"] for n in DATA_STAGES) for s in (in_memory, multi)]
    print(f"  {'sum':<18}{sums[0]:10.2f}{sums[1]:10.2f}   (multi-processing / in memory = {sums[1] / sums[0]:.2f}; "
          f"its whole pipeline {wall:.2f} s)")


def print_reference(non_trainer: float, fresh_wall: float) -> None:
    """Runs TFX's MNIST example on the same data, in-process and with its own Beam args; prints the ratios."""
    from bench import reference_mnist  # noqa: PLC0415

    data_root = tempfile.mkdtemp(prefix="tfx-mnist-records-")
    reference_mnist.write_records(mnist_dir(), data_root)
    runs = {
        "in-process Beam": reference_mnist.run_reference(data_root, []),
        "example's Beam args": reference_mnist.run_reference(data_root, reference_mnist.EXAMPLE_BEAM_ARGS),
    }
    print("\nTFX MNIST example (reference), same data, same machine, fresh output dirs:")
    print(f"{'component':<22}" + "".join(f"{name:>22}" for name in runs))
    for node in runs["in-process Beam"]["components"]:
        print(f"{node:<22}" + "".join(f"{run['components'].get(node, float('nan')):22.2f}" for run in runs.values()))
    print(f"{'command wall time':<22}" + "".join(f"{run['wall']:22.2f}" for run in runs.values()))
    stages = ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator")
    in_process = runs["in-process Beam"]
    reference_stages = sum(v for k, v in in_process["components"].items() if k.split(".")[0] in stages)
    print(f"ratio, data stages: ours {non_trainer:.2f} s / the reference's, in-process Beam, {reference_stages:.2f} s = "
          f"{non_trainer / reference_stages:.3f} (target <= 0.25)")
    print(f"ratio, whole pipeline: ours {fresh_wall:.2f} s / the reference, in-process Beam, {in_process['wall']:.2f} s = "
          f"{fresh_wall / in_process['wall']:.3f} (target <= 0.25)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="settings for all three runs")
    parser.add_argument("--reference", action="store_true", help="also run TFX's MNIST example as the baseline")
    parser.add_argument("--multi-processing", action="store_true",
                        help="also run fresh with DirectRunner multi-processing (2 workers) and compare the data stages")
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
    print(f"\nExampleGen + StatisticsGen + Transform + Evaluator, fresh: {non_trainer:.2f} s")
    print(f"whole pipeline, fresh: {fresh_wall:.2f} s, eval accuracy {fresh['eval_accuracy']:.4f} (target >= 0.98)")
    until_evaluated = stage_sum(change, ("Trainer", "Evaluator"))
    print(f"Trainer change: Trainer + Evaluator {until_evaluated:.2f} s, command {change_wall:.2f} s (target <= 15)")
    if args.multi_processing:
        print_multi_processing(fresh, extra)
    if args.reference:
        print_reference(non_trainer, fresh_wall)
    print(f"\n(outputs in {output_dir})")


if __name__ == "__main__":
    main()
