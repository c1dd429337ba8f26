"""`python -m pipeline.tools.tensorboard` over the exploding-gradient experiment's two real pipeline runs, as a user
starts it: the HParams table against summary.json and the gradient reports, and the Clipping dashboard in a real
headless browser."""
import os
import signal
import subprocess
import sys
import time

import pytest

from components.trainer.dashboards import CLIPPING_DETAIL, NORMS_CHART, THRESHOLD_CHART
from pipeline.tools import browser
from tests.e2e.run_cli import REPO
from tests.tensorboard_client import Board, chart_regexes, charts


# The norm chart's filled areas (Plottable draws a margin chart's band as an "area" path) with a shape.
BANDS = """(() => {
  const cards = [];
  const walk = (node) => { if (node.tagName === "TF-CUSTOM-SCALAR-MARGIN-CHART-CARD") cards.push(node);
                           if (node.shadowRoot) walk(node.shadowRoot); for (const c of node.children || []) walk(c); };
  walk(document.documentElement);
  const areas = [];
  const collect = (node) => { if (node.classList && node.classList.contains("area")) areas.push(node);
                              if (node.shadowRoot) collect(node.shadowRoot); for (const c of node.children || []) collect(c); };
  cards.forEach(collect);
  return areas.filter(a => (a.getAttribute("d") || "").length > 20).length;
})()"""


@pytest.fixture(scope="module")
def served(experiment):
    output_dir, _, data = experiment
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.tools.tensorboard", "--output-dir", output_dir, "--port", str(browser.free_port())],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.lstrip().startswith("HParams table: "):  # the last line it prints
                break
        else:
            pytest.fail(f"pipeline.tools.tensorboard ended without serving: {''.join(lines)}{process.stderr.read()[-2000:]}")
        board = Board(next(line for line in lines if line.startswith("TensorBoard at ")).split()[2])
        names = [line.split(":")[0] for line in lines[:2]]
        assert names == ["clip=none", "clip=global_norm"]
        board.wait_for(f"{name}/train" for name in names)
        yield board, dict(zip(names, data["runs"])), lines
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C
        assert process.wait(timeout=30) == 0


def test_it_names_both_dashboards(served):
    board, _, lines = served
    assert lines[-3:] == [f"TensorBoard at {board.url} (Ctrl-C to stop)\n", f"  Clipping dashboard: {board.url}#custom_scalars\n",
                          f"  HParams table: {board.url}#hparams\n"]


def test_hparams_rows_equal_the_runs_summaries(served):
    board, runs, _ = served
    experiment = board.experiment()
    differing = [h["name"] for h in experiment["hparamInfos"] if h.get("differs")]
    assert differing == ["clip.strategy"]  # the one setting the two runs differ in, listed first
    sessions = board.sessions()
    assert set(sessions) == {f"{name}/train" for name in runs}
    for name, run in runs.items():
        summary, report = run["summary"], run["summary"]["gradient_report"]
        session = sessions[f"{name}/train"]
        config = summary["config"]
        assert session["hparams"]["clip.strategy"] == config["clip"]["strategy"]
        if config["clip"]["strategy"] == "none":
            assert "clip.threshold" not in session["hparams"]  # a blank cell: the strategy reads no threshold
        else:
            assert session["hparams"]["clip.threshold"] == config["clip"]["threshold"] == 15
        assert session["hparams"]["trainer.optimizer"] == config["trainer"]["optimizer"] == "sgd"
        assert session["hparams"]["trainer.learning_rate"] == pytest.approx(config["trainer"]["learning_rate"])
        assert session["hparams"]["transform.divisor"] == config["transform"]["divisor"] == 50
        assert session["hparams"]["trainer.loss"] == "mse" and session["hparams"]["trainer.seed"] == 0
        metrics = session["metrics"]
        assert metrics["final/eval_accuracy"] == pytest.approx(summary["eval_accuracy"], abs=1e-6)  # TFMA's number
        assert metrics["final/max_pre_clip_norm"] == pytest.approx(report["max_pre_clip_norm"], rel=1e-6)
        assert metrics["final/p99_pre_clip_norm"] == pytest.approx(report["p99_pre_clip_norm"], rel=1e-6)
        assert metrics["final/clipped_fraction"] == pytest.approx(report["clipped_fraction"], rel=1e-6)
        assert metrics["final/nonfinite_steps"] == report["nonfinite_steps"]
        assert metrics["final/diverged"] == float(report["diverged_at_step"] is not None)
        assert metrics["final/final_loss"] == pytest.approx(report["final_loss"], rel=1e-6)
    assert sessions["clip=none/train"]["status"] == "STATUS_FAILURE"  # diverged
    assert sessions["clip=global_norm/train"]["status"] == "STATUS_SUCCESS"


def test_clipping_dashboard_merges_both_runs(served):
    board, runs, _ = served
    layout = board.layout()
    assert [c["title"] for c in layout["category"]] == ["Clipping", CLIPPING_DETAIL, "Updates", "Per variable", "Training"]
    [norms], threshold = charts(layout, "Clipping"), charts(layout, CLIPPING_DETAIL)[0]
    matched = {}
    for name in runs:
        for regex in chart_regexes(norms) + chart_regexes(threshold):
            matched.update({(name, tag): points for tag, points in board.matching_tags(f"{name}/train", regex).items()})
    assert set(matched) == {("clip=none", "grad_norm/pre_clip"), ("clip=none", "grad_norm/post_clip"),
                            ("clip=global_norm", "grad_norm/pre_clip"), ("clip=global_norm", "grad_norm/post_clip"),
                            ("clip=global_norm", "clip/threshold")}
    assert max(p[2] for p in matched[("clip=global_norm", "grad_norm/post_clip")]) <= 15.0 * (1 + 1e-5)
    assert max(p[2] for p in matched[("clip=none", "grad_norm/pre_clip")]) > 1e4  # the explosion, on the same chart
    assert "." not in board.get("data/runs")  # the experiment folder the HParams table reads is no run to pick


def test_histograms_dashboard_serves_every_histogram_of_the_clipped_run(served):
    """A step's 18 histograms are written as one event; TensorBoard's histogram plugin still serves each tag,
    at the configured cadence (50 steps), every bucket count adding up to its tensor's size."""
    board, _, _ = served
    run = "clip=global_norm/train"
    variables = {f"dense_{i}/{kind}": size for i, (fan_in, fan_out) in enumerate([(784, 512), (512, 256), (256, 10)])
                 for kind, size in (("kernel", fan_in * fan_out), ("bias", fan_out))}
    tags = {f"{prefix}/{name}{suffix}": size for name, size in variables.items()
            for prefix, suffix in (("grad_hist", "/pre_clip"), ("grad_hist", "/post_clip"), ("weights", ""))}
    assert set(board.get("data/plugin/histograms/tags")[run]) == set(tags)
    for tag, size in tags.items():
        histograms = board.get("data/plugin/histograms/histograms", run=run, tag=tag)
        assert [step for _, step, _ in histograms][:2] == [0, 50], tag
        assert all(sum(bucket[2] for bucket in buckets) == size for _, _, buckets in histograms), tag


def test_a_real_browser_shows_the_clipping_charts(served, tmp_path):
    if browser.find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs headless Chromium for this test: {browser.INSTALL_HINT} (.ci/run installs it)")
        pytest.skip(f"no Chromium on this machine; install it to run this test: {browser.INSTALL_HINT}")
    board, runs, _ = served
    with browser.HeadlessChromium(1600, 1000) as page:
        page.open(board.url + "#custom_scalars&_smoothingWeight=0")
        # Chart titles, and the series legend each chart lists once its data arrived.
        text = page.wait_for_text([
            "Clipping", NORMS_CHART, THRESHOLD_CHART, "Per variable", "Training",
            "clip/threshold (clip=global_norm/train)", "clip=none/train", "clip=global_norm/train",
        ])
        assert text.index(NORMS_CHART) < text.index(THRESHOLD_CHART) < text.index("Per variable") < text.index("Training")
        assert "Missing Tags" not in text  # every run has the band's three series
        # The band: one filled area per run under the norm chart's lines, drawn in the run's colour.
        assert page.evaluate(BANDS) == 2
        time.sleep(2)
        picture = page.screenshot(str(tmp_path / "clipping.png"))
    with open(picture, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # not a blank page (7 kB at this size)
