"""``python -m pipeline.tools.screenshots``: the docs' TensorBoard pictures, from a real TensorBoard.

Runs the exploding-gradient experiment (clipping off vs on) on the first
images of real MNIST for two epochs, so that the whole story (the unclipped
norm exploding within a dozen steps, the clipped one held at the threshold)
spans a third of the charts' width instead of a sliver of a 18,760-step axis;
then serves the runs as ``pipeline.tools.tensorboard`` does and has headless
Chromium photograph the Clipping dashboard (both runs on the same charts,
norms on a log axis) and the HParams table into ``docs/``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import List, Optional

import numpy as np

from pipeline.tools import browser, tensorboard
from pipeline.fingerprint import PROJECT_ROOT

DOCS = os.path.join(PROJECT_ROOT, "docs")
CLIPPING_PNG = "tensorboard_clipping.png"
HPARAMS_PNG = "tensorboard_hparams.png"
# The legacy dashboards read their settings from the URL: no smoothing, so every step is drawn as logged.
CLIPPING_PAGE = "#custom_scalars&_smoothingWeight=0"
HPARAMS_PAGE = "#hparams"
RENDER_SECONDS = 3  # after the text is there, for the charts' lines to be drawn
CLIPPING_CHARTS = 4  # legends opened: the norm's chart and the first three after it (threshold, rate, scale)
HPARAMS_SIZE = (2400, 420)

# Norms span 0.1 to 1e11 here: show outliers, put every "gradient norm" chart on a log axis, widen the norm's
# band chart, and open the Clipping charts' legends (which series is which run and tag). Returns how many charts
# went log.
_PREPARE_CHARTS = """(() => {
  const below = (root) => {  // root and every element under it, through shadow roots
    const found = [];
    const walk = (node) => { found.push(node); if (node.shadowRoot) walk(node.shadowRoot);
                             for (const child of node.children || []) walk(child); };
    walk(root);
    return found;
  };
  const found = below(document.documentElement);
  const outliers = found.find(n => n.tagName === "PAPER-CHECKBOX" && n.textContent.includes("Ignore outliers"));
  if (outliers && outliers.checked) outliers.click();
  let toggled = 0;
  const cards = found.filter(n => ["TF-CUSTOM-SCALAR-MULTI-LINE-CHART-CARD", "TF-CUSTOM-SCALAR-MARGIN-CHART-CARD"]
                                   .includes(n.tagName));
  cards.forEach((card, index) => {
    const inside = below(card);
    const button = inside.find(n => n.getAttribute && n.getAttribute("title") === "Toggle y-axis log scale");
    if (button && String(card.title).includes("gradient norm")) { button.click(); toggled++; }
    // The first category's one chart, the norm and its band, at the dashboard's full width.
    const expand = inside.find(n => n.getAttribute && n.getAttribute("icon") === "fullscreen");
    if (expand && card.tagName === "TF-CUSTOM-SCALAR-MARGIN-CHART-CARD") expand.click();
    const legend = inside.find(n => n.classList && n.classList.contains("toggle-matches-button"));
    if (legend && index < CLIPPING_CHARTS) legend.click();
  });
  return toggled;
})()"""


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=os.path.join("runs", "screenshots"),
                        help="where the experiment runs (reused if it already holds one)")
    parser.add_argument("--data-dir", default="", help="MNIST (else $MNIST_DATA_DIR, the keras cache, a download)")
    parser.add_argument("--train-examples", type=int, default=4000, help="first images of the train split used")
    parser.add_argument("--eval-examples", type=int, default=1000, help="first images of the eval split used")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--docs", default=DOCS, help="where the PNGs go (default: the checkout's docs/)")
    parser.add_argument("--width", type=int, default=1900)
    parser.add_argument("--height", type=int, default=1050)
    return parser.parse_args(argv)


def write_slice(data_dir: str, path: str, train: int, evaluation: int) -> str:
    """The first images of each split of MNIST, as a keras-style .npz the ExampleGen reads."""
    from components.example_gen.component import IDX_PATTERNS, locate_split  # noqa: PLC0415 (TensorFlow)
    from pipeline.data_source import resolve_data_dir  # noqa: PLC0415

    source = resolve_data_dir(data_dir, os.environ.get("MNIST_DATA_DIR"))
    base, npz = (os.path.dirname(source), os.path.basename(source)) if source.endswith(".npz") else (source, "")
    arrays = {}
    for split, count, keys in (("train", train, ("x_train", "y_train")), ("eval", evaluation, ("x_test", "y_test"))):
        images, labels = locate_split(base, split, npz or IDX_PATTERNS[split]).read()
        arrays.update({keys[0]: images[:count], keys[1]: labels[:count]})
    np.savez(path, **arrays)
    return path


def ensure_experiment(args: argparse.Namespace, output_dir: str) -> None:
    if os.path.exists(os.path.join(output_dir, "experiment.json")):
        return
    os.makedirs(output_dir, exist_ok=True)
    data = write_slice(args.data_dir, os.path.join(output_dir, "mnist-slice.npz"), args.train_examples,
                       args.eval_examples)
    print(f"running the exploding-gradient experiment on {data} into {output_dir}", flush=True)
    subprocess.run([sys.executable, "-m", "pipeline.tools.experiment", "explode", "--data-dir", data,
                    "--epochs", str(args.epochs), "--output-dir", output_dir], check=True)


def serve(output_dir: str) -> tuple[str, List[str]]:
    """TensorBoard over the output dir's Trainer runs; its URL and the runs' names."""
    runs, spec = tensorboard.prepare(output_dir)
    url = tensorboard.start_server(spec, "127.0.0.1", browser.free_port(), f"the Trainer runs of {os.path.relpath(output_dir)}")
    return url, tensorboard.run_names(runs)


def photograph(url: str, names: List[str], docs: str, width: int, height: int) -> List[str]:
    with browser.HeadlessChromium(width, height) as page:
        page.open(url + CLIPPING_PAGE)
        page.wait_for_text([f"{name}/train" for name in names] + ["clip/threshold ("])
        if not page.evaluate(f"const CLIPPING_CHARTS = {CLIPPING_CHARTS}; {_PREPARE_CHARTS}"):
            raise RuntimeError("found no gradient-norm chart to put on a log axis")
        time.sleep(RENDER_SECONDS)
        clipping = page.screenshot(os.path.join(docs, CLIPPING_PNG))
        page.resize(*HPARAMS_SIZE)  # wide enough for every metric column, only as tall as a few rows
        page.open(url + HPARAMS_PAGE)
        page.wait_for_text(["eval accuracy", "trainer-"])
        time.sleep(RENDER_SECONDS)
        hparams = page.screenshot(os.path.join(docs, HPARAMS_PNG))
    return [clipping, hparams]


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if browser.find_chromium() is None:
        print(f"clipflow: error: no Chromium found; install it: {browser.INSTALL_HINT}", file=sys.stderr)
        return 2
    output_dir = os.path.abspath(args.output_dir)
    ensure_experiment(args, output_dir)
    url, names = serve(output_dir)
    for path in photograph(url, names, args.docs, args.width, args.height):
        print(path)
    return 0


if __name__ == "__main__":
    from pipeline.exits import exit_process  # noqa: PLC0415

    exit_process(main())  # no interpreter teardown under TensorBoard's server threads
