"""``python -m pipeline.tools.experiment explode``: the exploding-gradient demo, clipping off vs on.

The classic recipe (inputs / 50, MLP 784-512-256-10 with ReLU, MSE on one-hot
labels, SGD, batch 128, truncated-normal init) is run twice on one pipeline
root, without and with ``clip_by_global_norm``. Ingest, validation and
Transform run once and are cached for the second run. The result: both runs
side by side in TensorBoard, a figure of the norms and losses per step, and
a Markdown report whose numbers come from the event files. Divergence is an
outcome to report, not a crash.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from pipeline.logs import quiet_terminal, send_logs_to_file
from pipeline.exits import attributed, exit_process, report_user_errors
from pipeline.prepare import build_config

RECIPE = (
    "transform.mode=divide", "transform.divisor=50", "trainer.hidden_units=[512, 256]", "trainer.optimizer=sgd",
    "trainer.loss=mse", "trainer.init=truncated_normal", "trainer.batch_size=128", "trainer.lr_schedule=constant",
)
VARIANTS = {"clipping off": ("clip.strategy=none",), "clipping on": ("clip.strategy=global_norm",)}


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.experiment", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="experiment", required=True)
    explode = sub.add_parser("explode", help="exploding gradients: clipping off vs on")
    explode.add_argument("--learning-rate", type=float, default=0.1, help="SGD learning rate (default 0.1)")
    explode.add_argument("--clip-threshold", type=float, default=15.0, help="global-norm clip of the clipped run")
    explode.add_argument("--epochs", type=int, default=40, help="training epochs of each run (default 40)")
    explode.add_argument("--output-dir", default=os.path.join("runs", "explode"))
    explode.add_argument("--data-dir", help="MNIST folder or .npz (else $MNIST_DATA_DIR, keras cache, download)")
    explode.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="further settings")
    explode.add_argument("--debug", action="store_true", help="show logs and tracebacks")
    return parser.parse_args(argv)


def run_variant(args: argparse.Namespace, name: str, overrides: tuple, log_file: Optional[str]):
    from pipeline import summary  # noqa: PLC0415  (TensorFlow and TFX load after the logs are routed)
    from pipeline.tools.explode_report import RunResult  # noqa: PLC0415
    from pipeline.runners import local  # noqa: PLC0415

    settings = [
        *RECIPE, f"trainer.learning_rate={args.learning_rate}", f"trainer.epochs={args.epochs}",
        f"clip.threshold={args.clip_threshold}", *overrides, *args.set,
    ]
    config = build_config(
        os.environ.get("MNIST_DATA_DIR"), overrides=settings,
        flags={"data.data_dir": args.data_dir, "pipeline.output_dir": args.output_dir},
    )
    print(f"== {name}: {', '.join(overrides)}", flush=True)
    attributed(config, log_file, lambda: local.run(config))
    return RunResult.from_summary(name, summary.write_summary(config), config.clip.strategy != "none")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not args.debug:
        quiet_terminal()
    return report_user_errors(args.debug, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    output_dir = os.path.abspath(args.output_dir)
    log_file = None
    if not args.debug:
        os.makedirs(output_dir, exist_ok=True)
        log_file = send_logs_to_file(output_dir)
        print(f"full log: {log_file}", flush=True)
    results = [run_variant(args, name, overrides, log_file) for name, overrides in VARIANTS.items()]
    from pipeline.tools.explode_report import write_figure, write_report  # noqa: PLC0415

    figure = write_figure(results, args.clip_threshold, os.path.join(output_dir, "gradient_norms.png"))
    report = write_report(results, vars(args), figure, os.path.join(output_dir, "report.md"))
    with open(os.path.join(output_dir, "experiment.json"), "w") as f:
        json.dump({"args": vars(args), "runs": [r.to_dict() for r in results]}, f, indent=2)
    for result in results:
        print(result.headline())
    print(f"figure: {figure}\nreport: {report}")
    print(f"side by side: {sys.executable} -m pipeline.tools.tensorboard --output-dir {output_dir}")
    return 0


if __name__ == "__main__":
    exit_process(main())
