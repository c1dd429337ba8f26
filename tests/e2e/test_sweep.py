"""`pipeline.tools.experiment sweep` on a slice of real MNIST: one pipeline, a Trainer and an Evaluator per point and
seed, numbers that equal each Trainer's own, a verdict that follows from them, a cache that trains only an added
seed, every point and seed in TensorBoard."""
import os
import shutil
import statistics
import subprocess
import sys

import pytest
from scipy import stats

from components.trainer.report import GradientReport
from pipeline import metadata
from pipeline.tools.tensorboard import prepare
from tests.e2e.run_cli import REPO, read_summary
from components.trainer.dashboards import CLIPPING_DETAIL
from tests.tensorboard_client import Board, chart_regexes, charts

SETTINGS = ["none", "global_norm-0.25"]
POINTS = [f"{setting}-seed{seed}" for setting in SETTINGS for seed in (0, 1)]
# What the second run adds: a seed, for every setting. (Node ids name the point and seed, never a position in the
# grid, so an added threshold is the same case: tests/pipeline/test_sweep.py holds the ids to the names.)
ADDED = ["none-seed2", "global_norm-0.25-seed2"]


def run_sweep(output_dir: str, data_dir: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.tools.experiment", "sweep", "--data-dir", data_dir, "--output-dir", output_dir,
         "--epochs", "1", "--set", "telemetry.histogram_every_n_steps=0", *args],
        capture_output=True, text=True, timeout=900, cwd=REPO,
    )


@pytest.fixture(scope="module")
def swept(mnist_slice, tmp_path_factory):
    """Two settings x two seeds, then one more seed: the first run's summary kept as first-summary.json."""
    output_dir = str(tmp_path_factory.mktemp("sweep"))
    first = run_sweep(output_dir, mnist_slice, "--strategies", "none,global_norm", "--thresholds", "0.25",
                      "--seeds", "0,1")
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.copy(os.path.join(output_dir, "summary.json"), os.path.join(output_dir, "first-summary.json"))
    with open(os.path.join(output_dir, "report.md")) as f:
        report = f.read()
    added = run_sweep(output_dir, mnist_slice, "--strategies", "none,global_norm", "--thresholds", "0.25",
                      "--seeds", "0,1,2")
    assert added.returncode == 0, added.stderr[-3000:]
    return output_dir, read_summary(output_dir, "first-summary.json"), report, read_summary(output_dir), first.stdout


def test_one_ingest_and_transform_then_a_trainer_and_evaluator_per_point_and_seed(swept):
    output_dir, first, _, _, stdout = swept
    for point in POINTS:  # each Trainer's progress says which point and seed it trains
        assert f"\nTrainer.{point}: epoch 1/1: step " in stdout
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    executions = metadata.run_executions(store, first["pipeline_run"])
    nodes = [e.node for e in executions]
    for once in ("MnistExampleGen", "StatisticsGen", "Transform"):
        assert nodes.count(once) == 1, nodes
    assert sorted(n for n in nodes if n.startswith("Trainer")) == sorted(f"Trainer.{p}" for p in POINTS)
    assert sorted(n for n in nodes if n.startswith("Evaluator")) == sorted(f"Evaluator.{p}" for p in POINTS)
    assert {e.state for e in executions} == {"COMPLETE"}


def _rows(report: str, names) -> dict:
    """The report's table rows whose first cell is one of ``names``, split into cells."""
    rows = {}
    for line in report.splitlines():
        cells = line.split(" | ")
        if line.startswith("| ") and cells[0].lstrip("| ") in names:
            rows[cells[0].lstrip("| ")] = cells
    return rows


def test_the_reports_numbers_are_each_trainers_own(swept):
    output_dir, first, report, _, stdout = swept
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    rows = _rows(report, POINTS)
    assert sorted(rows) == sorted(POINTS)
    points = {p["point"]: p for p in first["points"]}
    own = {}
    for name in POINTS:
        (trainer,) = metadata.node_executions(store, f"Trainer.{name}")[:1]
        own[name] = GradientReport.read(trainer.outputs["model_run"][0].uri)  # the Trainer's own, found in ML Metadata
        point = points[name]
        assert point["gradient_report"] == own[name].__dict__
        assert point["seed"] == int(name[-1]) and point["setting"] == name.rsplit("-seed", 1)[0]
        assert point["eval_accuracy"] == pytest.approx(own[name].eval_accuracy, abs=1e-6)  # TFMA = the Trainer's own
        cells = rows[name]
        assert cells[3] == f"{own[name].eval_accuracy:.4f}"
        assert cells[4] == f"{own[name].final_loss:.4g}" and cells[5] == f"{own[name].max_pre_clip_norm:.4g}"
        assert cells[6] == f"{own[name].p99_pre_clip_norm:.4g}" and cells[7] == f"{own[name].clipped_fraction:.1%}"
        assert cells[8] == str(own[name].nonfinite_steps)
        assert float(cells[10].split()[0]) == pytest.approx(trainer.wall_seconds, abs=0.01)
        assert cells[11:] == [str(own[name].skipped_spikes), f"{len(own[name].rollbacks)} |"]
    assert own["global_norm-0.25-seed0"].clipped_fraction > 0.5  # the small threshold binds
    assert own["none-seed1"].clipped_fraction == 0.0
    assert own["none-seed0"].eval_accuracy != own["none-seed1"].eval_accuracy  # the seeds train different models
    with open(os.path.join(output_dir, "sweep.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_each_setting_over_seeds_and_the_verdict_follow_from_the_trainers_own_numbers(swept):
    _, first, report, _, stdout = swept
    accuracies = {s: [p["gradient_report"]["eval_accuracy"] for p in first["points"] if p["setting"] == s]
                  for s in SETTINGS}
    rows = _rows(report, SETTINGS)
    for setting in first["settings"]:
        scores = accuracies[setting["setting"]]
        assert setting["seeds"] == [0, 1]
        assert setting["eval_accuracy"] == pytest.approx({"mean": statistics.fmean(scores), "std": statistics.stdev(scores),
                                                          "min": min(scores), "max": max(scores)}, abs=1e-6)
        cells = rows[setting["setting"]]
        assert cells[3:5] == ["0, 1", f"{statistics.fmean(scores):.4f} +- {statistics.stdev(scores):.4f}"]
        assert cells[-1] == "0 of 2 |"  # diverged on no seed
    top = max(SETTINGS, key=lambda s: statistics.fmean(accuracies[s]))
    other = next(s for s in SETTINGS if s != top)
    p_value = stats.ttest_ind(accuracies[top], accuracies[other], equal_var=False).pvalue
    assert first["verdict"]["p_values"] == {other: pytest.approx(p_value, rel=1e-6)}
    assert first["verdict"]["winner"] is bool(p_value < 0.05)
    sentence = first["verdict"]["sentence"]
    assert f"**Verdict: {sentence}.**" in report and f"verdict: {sentence}" in stdout
    assert "Welch's t-test (two-sided, p < 0.05)" in sentence


def test_an_added_seed_trains_only_what_is_new(swept):
    _, _, _, added, _ = swept
    ran = sorted(node for node, info in added["components"].items() if info["state"] == "COMPLETE")
    assert ran == sorted([f"Trainer.{p}" for p in ADDED] + [f"Evaluator.{p}" for p in ADDED])
    assert {info["state"] for node, info in added["components"].items() if node not in ran} == {"CACHED"}
    cached = {p["point"]: p for p in added["points"]}
    assert cached["none-seed0"]["trainer_state"] == "CACHED" and cached["none-seed0"]["trainer_seconds"] > 0.1
    assert [s["seeds"] for s in added["settings"]] == [[0, 1, 2]] * 2


def test_every_point_and_seed_is_a_row_of_the_hparams_table_with_its_name_as_trial_id(swept):
    output_dir, _, _, added, _ = swept
    runs, spec = prepare(output_dir)
    board = Board.start(spec)
    # In data-flow order (trainer, clip); not the threshold: the one clipping setting has the only one there is.
    names = {point["point"]: f"seed={point['seed']} clip={point['strategy']}" for point in added["points"]}
    assert len(names) == len(POINTS) + len(ADDED)
    board.wait_for(f"{name}/train" for name in names.values())
    sessions = board.sessions()
    assert set(sessions) == {f"{name}/train" for name in names.values()}
    for point in added["points"]:
        session = sessions[f"{names[point['point']]}/train"]
        assert session["trial"] == point["point"]  # the Trial ID column: the point's own name
        assert session["metrics"]["final/eval_accuracy"] == pytest.approx(point["gradient_report"]["eval_accuracy"])
        assert session["hparams"]["clip.strategy"] == point["strategy"]
        assert session["hparams"].get("clip.threshold") == point["threshold"]  # none: a blank cell
        assert session["hparams"]["trainer.seed"] == point["seed"]
    differing = [h["name"] for h in board.experiment()["hparamInfos"] if h.get("differs")]
    assert differing == ["clip.strategy", "trainer.seed"]  # the threshold, as in the names: one for the one clipping
    [norms], threshold = charts(board.layout(), "Clipping"), charts(board.layout(), CLIPPING_DETAIL)[0]  # every point
    for point in added["points"]:
        run = f"{names[point['point']]}/train"
        shown = {tag for regex in chart_regexes(norms) + chart_regexes(threshold) for tag in board.matching_tags(run, regex)}
        assert shown == {"grad_norm/pre_clip", "grad_norm/post_clip"} | ({"clip/threshold"} if point["threshold"] else set())


@pytest.mark.parametrize("args,message", [
    (["--strategies", ""], "the sweep grid is empty: --strategies names no strategy"),
    (["--thresholds", "0.5,0"], "sweep.thresholds must all be > 0"),
    (["--strategies", "none,sometimes"], "sweep.strategies: unknown strategy 'sometimes'"),
    (["--thresholds", "1,1.0"], "the sweep has the point global_norm-1 twice"),
    (["--thresholds", "1,big"], "--thresholds takes comma-separated numbers; 'big' is not one"),
    (["--seeds", ""], "--seeds names no seed; give comma-separated seeds, e.g. --seeds 0,1,2,3"),
    (["--seeds", ","], "--seeds names no seed"),
    (["--seeds", "0,0"], "sweep.seeds has 0 twice; list each seed once"),
    (["--seeds", "0,-1"], "sweep.seeds must all be >= 0 (got -1)"),
    (["--seeds", "0,1.5"], "--seeds takes comma-separated whole numbers; '1.5' is not one"),
    (["--seeds", "0,1,2", "--set", "sweep.max_trainers=4"],
     "5 settings x 3 seed(s) = 15 Trainers, more than sweep.max_trainers = 4"),
])
def test_a_bad_grid_is_one_line_and_runs_nothing(args, message, tmp_path):
    output_dir = str(tmp_path / "out")
    result = run_sweep(output_dir, str(tmp_path), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("clipflow: error: ") and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not os.path.exists(output_dir)
