"""Run naming, and a real TensorBoard server on 127.0.0.1 serving our runs over HTTP: the scalars
and histograms, the Clipping dashboard (Custom Scalars) and the HParams table."""
import pytest

from components.common.typed import to_dict
from components.trainer.dashboards import CLIPPING_DETAIL
from components.trainer.options import ClipOptions
from pipeline.tools.tensorboard import TrainerRun, logdir_spec, run_names, write_experiment
from tests.components.trainer.helpers import tiny_run
from tests.tensorboard_client import Board, chart_regexes, charts

pytestmark = pytest.mark.slow  # two training runs and a TensorBoard server

VARIABLES = ["dense_0/kernel", "dense_0/bias", "dense_1/kernel", "dense_1/bias"]
CLIPPED, UNCLIPPED = "clip=global_norm", "clip=none"


def _run(i, **settings):
    base = {"transform.divisor": 255.0, "clip.strategy": "global_norm", "trainer.epochs": 3}
    return TrainerRun(i, f"/logs/{i}", {**base, **settings})


def test_runs_are_named_by_the_settings_that_differ():
    runs = [_run(1, **{"transform.divisor": 50.0, "clip.strategy": "none"}), _run(2, **{"transform.divisor": 50.0}),
            _run(3)]
    assert run_names(runs) == ["scale=50 clip=none", "scale=50 clip=global_norm", "scale=255 clip=global_norm"]
    assert logdir_spec(runs[:1], "/out/tensorboard") == "trainer-1:/logs/1,/out/tensorboard"


def test_identical_settings_are_told_apart():
    assert run_names([_run(4), _run(9)]) == ["trainer-4", "trainer-9"]
    assert run_names([_run(4), _run(9), _run(10, **{"trainer.epochs": 5})]) == [
        "epochs=3 trainer-4", "epochs=3 trainer-9", "epochs=5 trainer-10"]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """Two real Trainer runs (a global-norm clip at 0.5 that binds, and none) served side by side."""
    tmp = tmp_path_factory.mktemp("board")
    runs, reports = [], {}
    for i, clip in enumerate([ClipOptions(strategy="global_norm", threshold=0.5), ClipOptions(strategy="none")]):
        logdir = str(tmp / clip.strategy)
        (_, reports[clip.strategy]), options = tiny_run(logdir, clip=clip)
        settings = {f"trainer.{k}": v for k, v in to_dict(options).items()}
        settings.update({f"clip.{k}": v for k, v in to_dict(clip).items()})
        runs.append(TrainerRun(i, logdir, settings))
    names = run_names(runs)
    assert names == [CLIPPED, UNCLIPPED]
    experiment_dir = str(tmp / "tensorboard")
    write_experiment(runs, experiment_dir)
    board = Board.start(logdir_spec(runs, experiment_dir), "two tiny runs")
    board.wait_for(f"{name}/train" for name in names)
    return board, {name: (run, reports[run.settings["clip.strategy"]]) for name, run in zip(names, runs)}


def test_scalars_and_histograms_pre_and_post_clip(board):
    board, _ = board
    run = f"{CLIPPED}/train"
    pre = board.get("data/plugin/scalars/scalars", run=run, tag="grad_norm/pre_clip")
    post = board.get("data/plugin/scalars/scalars", run=run, tag="grad_norm/post_clip")
    assert [p[1] for p in pre] == list(range(12)) and [p[1] for p in post] == list(range(12))
    assert all(p[2] <= 0.5 * (1 + 1e-5) for p in post)
    assert any(p[2] > 0.5 for p in pre)
    for when in ("pre_clip", "post_clip"):
        histograms = board.get("data/plugin/histograms/histograms", run=run, tag=f"grad_hist/dense_0/kernel/{when}")
        assert [h[1] for h in histograms] == [0, 5, 10]
        assert sum(bucket[2] for bucket in histograms[0][2]) == 784 * 16


def test_clipping_dashboard_comes_first_and_every_chart_shows_data(board):
    board, _ = board
    layout = board.layout()
    assert [c["title"] for c in layout["category"]] == ["Clipping", CLIPPING_DETAIL, "Updates", "Per variable", "Training"]
    runs = board.get("data/runs")
    for category in layout["category"]:
        for chart in category["chart"]:
            for regex in chart_regexes(chart):
                assert any(board.matching_tags(run, regex) for run in runs), (chart["title"], regex)


def test_the_norm_is_a_line_what_clipping_removed_a_band_and_the_threshold_a_chart_of_its_own(board):
    """TensorBoard colours Custom Scalars by run: no chart has two series of one run in one colour."""
    board, _ = board
    [norms], threshold = charts(board.layout(), "Clipping"), charts(board.layout(), CLIPPING_DETAIL)[0]
    assert norms["title"].startswith("global gradient norm: pre-clip (line) and what clipping removed (the band")
    # The browser looks a margin series' tags up by name, not as regexes.
    assert norms["margin"]["series"] == [
        {"value": "grad_norm/pre_clip", "lower": "grad_norm/post_clip", "upper": "grad_norm/pre_clip"}]
    for run, clipped in ((CLIPPED, True), (UNCLIPPED, False)):
        pre, post = (board.matching_tags(f"{run}/train", f"{tag}$")[tag] for tag in ("grad_norm/pre_clip", "grad_norm/post_clip"))
        assert [p[1] for p in pre] == [p[1] for p in post] == list(range(12))  # same steps: a band at every one
        assert all(low[2] <= high[2] * (1 + 1e-6) for low, high in zip(post, pre))  # the band below the line
        assert any(low[2] < high[2] * 0.99 for low, high in zip(post, pre)) == clipped  # and only where it clipped
    assert threshold["title"] == "clip threshold in force (a norm above it is clipped)"
    assert set(board.matching_tags(f"{CLIPPED}/train", threshold["multiline"]["tag"][0])) == {"clip/threshold"}
    assert not board.matching_tags(f"{UNCLIPPED}/train", threshold["multiline"]["tag"][0])  # none: no bound
    # Nothing else in any run (per-variable norms, the root's final/* values) falls into the threshold chart.
    for run in board.get("data/runs"):
        assert set(board.matching_tags(run, threshold["multiline"]["tag"][0])) <= {"clip/threshold"}


def test_the_run_lists_leave_out_the_experiment_folder_that_the_hparams_table_reads(board):
    board, _ = board
    assert sorted(board.get("data/runs")) == sorted(f"{name}/{split}" for name in (CLIPPED, UNCLIPPED)
                                                    for split in ("train", "eval"))
    assert board.experiment()["metricInfos"]  # read from that folder: the table's metric columns
    assert board.get("data/environment")["data_location"] == "two tiny runs"


def test_how_often_clipping_fires_chart(board):
    board, _ = board
    chart = charts(board.layout(), CLIPPING_DETAIL)[1]
    matched = {}
    for regex in chart["multiline"]["tag"]:
        matched.update(board.matching_tags(f"{CLIPPED}/train", regex))
    assert set(matched) == {"clip/clipped_fraction", "clip/clipped_fraction_recent"}
    assert "of the last 5" in chart["title"]  # tiny_run's clip_rate_window


def test_two_runs_give_one_merged_layout(board):
    board, _ = board
    layout = board.layout()
    per_variable = charts(layout, "Per variable")
    assert [c["title"] for c in per_variable] == [f"{v}: gradient norm pre- and post-clip" for v in VARIABLES]
    for chart, variable in zip(per_variable, VARIABLES):
        matched = {}
        for regex in chart["multiline"]["tag"]:
            matched.update(board.matching_tags(f"{UNCLIPPED}/train", regex))
        assert set(matched) == {f"grad_norm/{variable}/pre_clip", f"grad_norm/{variable}/post_clip"}
    updates = charts(layout, "Updates")
    for chart, variable in zip(updates[2:], VARIABLES):
        matched = {}
        for regex in chart["multiline"]["tag"]:
            matched.update(board.matching_tags(f"{UNCLIPPED}/train", regex))
        assert set(matched) == {f"update/{variable}/norm", f"update/{variable}/ratio"}
    titles = [c["title"] for category in layout["category"] for c in category["chart"]]
    assert len(titles) == len(set(titles)) == 5 + (2 + 4) + 4 + 3  # clipping, updates, per variable, training


def test_hparams_table_lists_both_runs_with_settings_and_results(board):
    board, runs = board
    experiment = board.experiment()
    columns = {h["name"]: h for h in experiment["hparamInfos"]}
    assert {"clip.strategy", "clip.threshold", "trainer.optimizer", "trainer.learning_rate", "trainer.seed"} <= set(columns)
    assert sorted(columns["clip.strategy"]["domainDiscrete"]) == ["global_norm", "none"]
    assert "clip.lo" not in columns and "clip.percentile" not in columns  # no run's strategy reads them
    assert [m["name"]["tag"] for m in experiment["metricInfos"]] == [
        "final/eval_accuracy", "final/diverged", "final/clipped_fraction", "final/max_pre_clip_norm",
        "final/p99_pre_clip_norm", "final/nonfinite_steps", "final/skipped_spikes", "final/rollbacks", "final/final_loss"]
    sessions = board.sessions()
    assert set(sessions) == {f"{CLIPPED}/train", f"{UNCLIPPED}/train"}
    for name, (run, report) in runs.items():
        session = sessions[f"{name}/train"]
        assert session["hparams"]["clip.strategy"] == run.settings["clip.strategy"]
        assert session["hparams"]["trainer.learning_rate"] == pytest.approx(run.settings["trainer.learning_rate"])
        assert session["hparams"]["trainer.hidden_units"] == "16"
        assert session["status"] == "STATUS_SUCCESS"
        assert session["metrics"]["final/eval_accuracy"] == pytest.approx(report.eval_accuracy, rel=1e-6)
        assert session["metrics"]["final/max_pre_clip_norm"] == pytest.approx(report.max_pre_clip_norm, rel=1e-6)
        assert session["metrics"]["final/clipped_fraction"] == pytest.approx(report.clipped_fraction, rel=1e-6)
        assert session["metrics"]["final/diverged"] == 0.0
    assert "clip.threshold" not in sessions[f"{UNCLIPPED}/train"]["hparams"]  # a blank cell: none reads no threshold
    assert sessions[f"{CLIPPED}/train"]["hparams"]["clip.threshold"] == 0.5
    assert sessions[f"{CLIPPED}/train"]["metrics"]["final/clipped_fraction"] > 0
    assert sessions[f"{UNCLIPPED}/train"]["metrics"]["final/clipped_fraction"] == 0

