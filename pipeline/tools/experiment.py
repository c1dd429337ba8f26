"""``python -m pipeline.tools.experiment``: ``explode`` (the exploding-gradient demo, clipping
off vs on) and ``sweep`` (a grid of clip settings as one TFX pipeline; its report names the best).

``explode``: the classic recipe (inputs / 50, MLP 784-512-256-10 with ReLU, MSE on one-hot
labels, SGD, batch 128, truncated-normal init) is run twice on one pipeline
root, without and with ``clip_by_global_norm``. Ingest, validation and
Transform run once and are cached for the second run. The result: both runs
side by side in TensorBoard, a figure of the norms and losses per step, and
a Markdown report whose numbers come from the event files. Divergence is an
outcome to report, not a crash.

``sweep``: the grid becomes the config's ``[sweep]`` section (pipeline/sweep.py), so the run is
one pipeline on any runner; on the embedded ones its ``report.md`` and figure follow, one row per
point, from the points' own artifacts.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from components.common.errors import ConfigError
from components.trainer.options import STRATEGIES
from pipeline.config import EMBEDDED_RUNNERS
from pipeline.logs import quiet_terminal, send_logs_to_file
from pipeline.exits import attributed, exit_process, report_user_errors
from pipeline.paths import RunPaths
from pipeline.prepare import build_config

# Settings over the defaults. explode: the tutorial's inputs / 50, SGD at 0.1, MSE and truncated-normal init.
RECIPES = {
    "default": (),
    "explode": (
        "transform.mode=divide", "transform.divisor=50", "trainer.hidden_units=[512, 256]", "trainer.optimizer=sgd",
        "trainer.loss=mse", "trainer.init=truncated_normal", "trainer.batch_size=128", "trainer.lr_schedule=constant",
        "trainer.learning_rate=0.1",
    ),
}
# A sweep's grid and epochs when the command names none: thresholds around where each recipe's gradients are.
SWEEP_DEFAULTS = {
    "default": {"thresholds": "0.25,0.5,1,2", "epochs": 3},
    "explode": {"thresholds": "1,5,15,50", "epochs": 40},
}
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
    sweep = sub.add_parser("sweep", help="a grid of clip settings as one TFX pipeline; report.md names the best point")
    sweep.add_argument("--recipe", choices=sorted(RECIPES), default="default",
                       help="default: the default model; explode: the tutorial's recipe (inputs/50, SGD 0.1, MSE)")
    sweep.add_argument("--strategies", default="none,global_norm", help="comma-separated clip strategies "
                       f"({', '.join(STRATEGIES)}; default none,global_norm)")
    sweep.add_argument("--thresholds", help="comma-separated clip thresholds for norm and global_norm "
                       "(default: 0.25,0.5,1,2; explode recipe: 1,5,15,50)")
    sweep.add_argument("--learning-rates", default="", help="comma-separated learning rates to cross with the rest")
    sweep.add_argument("--divisors", default="", help="comma-separated input divisors (one Transform each)")
    sweep.add_argument("--seeds", help="comma-separated seeds, each setting trained once per seed (e.g. 0,1,2,3): the "
                       "report then names a best setting only when it beats the others beyond the seeds' noise "
                       "(default: trainer.seed alone)")
    sweep.add_argument("--epochs", type=int, help="training epochs of each point (default: 3; explode recipe: 40)")
    sweep.add_argument("--output-dir", default=os.path.join("runs", "sweep"))
    sweep.add_argument("--data-dir", help="MNIST folder or .npz (else $MNIST_DATA_DIR, keras cache, download)")
    sweep.add_argument("--runner", help="local (default), beam, or kubeflow-v2 (compile the sweep's spec; no report)")
    sweep.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="further settings")
    sweep.add_argument("--debug", action="store_true", help="show logs and tracebacks")
    return parser.parse_args(argv)


def run_variant(args: argparse.Namespace, name: str, overrides: tuple, log_file: Optional[str]):
    from pipeline import summary  # noqa: PLC0415  (TensorFlow and TFX load after the logs are routed)
    from pipeline.tools.explode_report import RunResult  # noqa: PLC0415
    from pipeline.runners import local  # noqa: PLC0415

    settings = [
        *RECIPES["explode"], f"trainer.learning_rate={args.learning_rate}", f"trainer.epochs={args.epochs}",
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
    return report_user_errors(args.debug, lambda: (sweep if args.experiment == "sweep" else run)(args))


def _items(text: str) -> List[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _numbers(text: str, flag: str, kind: type = float) -> str:
    """``"0.5, 1"`` -> ``"[0.5, 1]"`` (a TOML list for ``--set``); anything not a number (of ``kind``) is a one-line error."""
    for item in _items(text):
        try:
            kind(item)
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise ConfigError(f"{flag} takes comma-separated {what}; {item!r} is not one") from None
    return f"[{', '.join(_items(text))}]"


def grid_settings(args: argparse.Namespace) -> List[str]:
    """The command's grid as ``[sweep]`` settings; an empty grid is refused here, before anything runs."""
    strategies = _items(args.strategies)
    if not strategies:
        raise ConfigError("the sweep grid is empty: --strategies names no strategy; e.g. --strategies none,global_norm")
    if args.seeds is not None and not _items(args.seeds):
        raise ConfigError("--seeds names no seed; give comma-separated seeds, e.g. --seeds 0,1,2,3")
    thresholds = args.thresholds
    if thresholds is None:  # the recipe's, where a strategy reads a threshold
        thresholds = SWEEP_DEFAULTS[args.recipe]["thresholds"] if {"norm", "global_norm"} & set(strategies) else ""
    return [
        f"sweep.strategies={json.dumps(strategies)}",
        f"sweep.thresholds={_numbers(thresholds, '--thresholds')}",
        f"sweep.learning_rates={_numbers(args.learning_rates, '--learning-rates')}",
        f"sweep.divisors={_numbers(args.divisors, '--divisors')}",
        f"sweep.seeds={_numbers(args.seeds or '', '--seeds', int)}",
    ]


def sweep(args: argparse.Namespace) -> int:
    epochs = args.epochs if args.epochs is not None else SWEEP_DEFAULTS[args.recipe]["epochs"]
    config = build_config(
        os.environ.get("MNIST_DATA_DIR"),
        overrides=[*RECIPES[args.recipe], f"trainer.epochs={epochs}", *grid_settings(args), *args.set],
        flags={"data.data_dir": args.data_dir, "pipeline.output_dir": args.output_dir, "pipeline.runner": args.runner},
    )
    log_file = None
    if not args.debug and config.pipeline.runner in EMBEDDED_RUNNERS:
        log_file = send_logs_to_file(config.pipeline.local_dir)
        print(f"full log: {log_file}", flush=True)
    from pipeline import runners, sweep as grid  # noqa: PLC0415  (TFX loads after the logs are routed)

    names = [point.name for point in grid.points(config)]
    print(f"== sweep of {len(names)} points, recipe {args.recipe}, {epochs} epochs: {', '.join(names)}", flush=True)
    result = attributed(config, log_file, lambda: runners.run(config))
    print(result, flush=True)
    if config.pipeline.runner not in EMBEDDED_RUNNERS:
        return 0
    from pipeline.tools.sweep_report import write_figure, write_report  # noqa: PLC0415

    with open(RunPaths.of(config.pipeline).summary) as f:
        summary = json.load(f)
    output_dir = config.pipeline.local_dir
    figure = write_figure(summary["settings"], os.path.join(output_dir, "sweep.png"))
    print(f"report: {write_report(summary, args.recipe, figure, os.path.join(output_dir, 'report.md'))}\nfigure: {figure}")
    return 0


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
