"""`pipeline.tools.experiment sweep` on a slice of real MNIST: one pipeline, a Trainer and an Evaluator per point,
numbers that equal each Trainer's own, a cache that trains only an added point, every point in TensorBoard."""
import os
import shutil
import subprocess
import sys

import pytest

from components.trainer.report import GradientReport
from pipeline import metadata
from pipeline.tools.tensorboard import prepare
from tests.e2e.run_cli import REPO, read_summary
from tests.tensorboard_client import Board, charts

POINTS = ["none", "global_norm-0.25", "global_norm-1"]


def run_sweep(output_dir: str, data_dir: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.tools.experiment", "sweep", "--data-dir", data_dir, "--output-dir", output_dir,
         "--epochs", "1", "--set", "telemetry.histogram_every_n_steps=0", *args],
        capture_output=True, text=True, timeout=900, cwd=REPO,
    )


@pytest.fixture(scope="module")
def swept(mnist_slice, tmp_path_factory):
    """Three points, then the same grid with a fourth: the first run's summary kept as first-summary.json."""
    output_dir = str(tmp_path_factory.mktemp("sweep"))
    first = run_sweep(output_dir, mnist_slice, "--strategies", "none,global_norm", "--thresholds", "0.25,1")
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.copy(os.path.join(output_dir, "summary.json"), os.path.join(output_dir, "first-summary.json"))
    with open(os.path.join(output_dir, "report.md")) as f:
        report = f.read()
    added = run_sweep(output_dir, mnist_slice, "--strategies", "none,global_norm", "--thresholds", "0.25,1,4")
    assert added.returncode == 0, added.stderr[-3000:]
    return output_dir, read_summary(output_dir, "first-summary.json"), report, read_summary(output_dir), first.stdout


def test_one_ingest_and_transform_then_a_trainer_and_evaluator_per_point(swept):
    output_dir, first, _, _, stdout = swept
    for point in POINTS:  # each Trainer's progress says which point it trains
        assert f"\nTrainer.{point}: epoch 1/1: step " in stdout
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    executions = metadata.run_executions(store, first["pipeline_run"])
    nodes = [e.node for e in executions]
    for once in ("MnistExampleGen", "StatisticsGen", "Transform"):
        assert nodes.count(once) == 1, nodes
    assert sorted(n for n in nodes if n.startswith("Trainer")) == sorted(f"Trainer.{p}" for p in POINTS)
    assert sorted(n for n in nodes if n.startswith("Evaluator")) == sorted(f"Evaluator.{p}" for p in POINTS)
    assert {e.state for e in executions} == {"COMPLETE"}


def test_the_reports_numbers_are_each_trainers_own(swept):
    output_dir, first, report, _, stdout = swept
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in report.splitlines()
            if line.startswith("| ") and not line.startswith("| point")}
    assert sorted(rows) == sorted(POINTS)
    points = {p["point"]: p for p in first["points"]}
    for name in POINTS:
        (trainer,) = metadata.node_executions(store, f"Trainer.{name}")[:1]
        own = GradientReport.read(trainer.outputs["model_run"][0].uri)  # the Trainer's own file, found in ML Metadata
        point = points[name]
        assert point["gradient_report"] == own.__dict__
        assert point["eval_accuracy"] == pytest.approx(own.eval_accuracy, abs=1e-6)  # TFMA = the Trainer's own eval
        cells = rows[name]
        assert cells[3] == f"{own.eval_accuracy:.4f}"
        assert cells[4] == f"{own.final_loss:.4g}" and cells[5] == f"{own.max_pre_clip_norm:.4g}"
        assert cells[6] == f"{own.p99_pre_clip_norm:.4g}" and cells[7] == f"{own.clipped_fraction:.1%}"
        assert cells[8] == str(own.nonfinite_steps)
        assert float(cells[10].split()[0]) == pytest.approx(trainer.wall_seconds, abs=0.01)
        assert cells[11:] == [str(own.skipped_spikes), f"{len(own.rollbacks)} |"]
    assert points["global_norm-0.25"]["gradient_report"]["clipped_fraction"] > 0.5  # the small threshold binds
    assert points["none"]["gradient_report"]["clipped_fraction"] == 0.0
    best = max(first["points"], key=lambda p: (p["eval_accuracy"], -p["gradient_report"]["clipped_fraction"]))
    assert first["best"] == best["point"] and f"**Best: `{best['point']}`**" in report
    assert f"best: {best['point']} (eval accuracy {best['eval_accuracy']:.4f})" in stdout
    with open(os.path.join(output_dir, "sweep.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_an_added_point_trains_only_that_point(swept):
    _, _, _, added, _ = swept
    ran = sorted(node for node, info in added["components"].items() if info["state"] == "COMPLETE")
    assert ran == ["Evaluator.global_norm-4", "Trainer.global_norm-4"]
    assert {info["state"] for node, info in added["components"].items() if node not in ran} == {"CACHED"}
    cached = {p["point"]: p for p in added["points"]}
    assert cached["none"]["trainer_state"] == "CACHED" and cached["none"]["trainer_seconds"] > 0.1  # the time it took


def test_every_point_is_a_row_of_the_hparams_table_named_by_what_differs(swept):
    output_dir, _, _, added, _ = swept
    runs, spec = prepare(output_dir)
    board = Board.start(spec)
    names = {"none": "clip=none", "global_norm-0.25": "clip=global_norm clip_at=0.25",
             "global_norm-1": "clip=global_norm clip_at=1", "global_norm-4": "clip=global_norm clip_at=4"}
    board.wait_for(f"{name}/train" for name in names.values())
    sessions = board.sessions()
    assert set(sessions) == {f"{name}/train" for name in names.values()}
    for point in added["points"]:
        session = sessions[f"{names[point['point']]}/train"]
        assert session["metrics"]["final/eval_accuracy"] == pytest.approx(point["gradient_report"]["eval_accuracy"])
        assert session["hparams"]["clip.strategy"] == point["strategy"]
        assert session["hparams"].get("clip.threshold") == point["threshold"]  # none: a blank cell
    differing = [h["name"] for h in board.experiment()["hparamInfos"] if h.get("differs")]
    assert differing == ["clip.strategy", "clip.threshold"]
    norms = charts(board.layout(), "Clipping")[0]  # pre, post and threshold: every point on the one chart
    for point in added["points"]:
        run = f"{names[point['point']]}/train"
        shown = {tag for regex in norms["multiline"]["tag"] for tag in board.matching_tags(run, regex)}
        assert shown == {"grad_norm/pre_clip", "grad_norm/post_clip"} | ({"clip/threshold"} if point["threshold"] else set())


@pytest.mark.parametrize("args,message", [
    (["--strategies", ""], "the sweep grid is empty: --strategies names no strategy"),
    (["--thresholds", "0.5,0"], "sweep.thresholds must all be > 0"),
    (["--strategies", "none,sometimes"], "unknown strategy 'sometimes' in sweep.strategies"),
    (["--thresholds", "1,1.0"], "the sweep has the point global_norm-1 twice"),
    (["--thresholds", "1,big"], "--thresholds takes comma-separated numbers; 'big' is not one"),
])
def test_a_bad_grid_is_one_line_and_runs_nothing(args, message, tmp_path):
    output_dir = str(tmp_path / "out")
    result = run_sweep(output_dir, str(tmp_path), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("clipflow: error: ") and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not os.path.exists(output_dir)
