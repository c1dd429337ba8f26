"""`pipeline.tools.experiment explode` on a slice: both runs, the figure, and a report whose numbers match the event files."""
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.tools.events import read_run, scalar_curve
from tests.e2e.run_cli import REPO


def test_unclipped_diverges_and_clipped_trains(experiment):
    _, result, data = experiment
    off, on = data["runs"]
    assert off["summary"]["gradient_report"]["diverged_at_step"] is not None
    assert off["summary"]["blessed"] is False
    assert on["summary"]["gradient_report"]["diverged_at_step"] is None
    assert on["max_post_clip_norm"] <= 15.0 * (1 + 1e-5)
    assert f"clipping off: training diverged at step {off['summary']['gradient_report']['diverged_at_step']}" in result.stdout
    states = on["summary"]["components"]
    assert states["MnistExampleGen"]["state"] == states["Transform"]["state"] == "CACHED"  # shared ingest


def test_report_numbers_match_the_event_files(experiment):
    output_dir, _, data = experiment
    with open(os.path.join(output_dir, "report.md")) as f:
        report = f.read()
    for run in data["runs"]:
        events = read_run(run["summary"]["tensorboard_logdir"])
        _, pre = scalar_curve(events["grad_norm/pre_clip"])
        _, post = scalar_curve(events["grad_norm/post_clip"])
        _, loss = scalar_curve(events["loss"])
        assert run["max_pre_clip_norm"] == pytest.approx(pre.max())
        assert run["max_post_clip_norm"] == pytest.approx(post.max())
        assert f"{pre.max():.4g}" in report and f"{loss[-1]:.4g}" in report
        for step in (0, 1):
            value = float(events["grad_norm/dense_0/kernel/pre_clip"][step])
            assert run["variable_norms_steps_0_1"]["dense_0/kernel"][str(step)] == pytest.approx(value)
            assert f"{value:.4g}" in report
        assert run["clipped_steps"] == int(np.sum([float(v) for v in events["clip/clipped"].values()]))
    assert "![gradient norms and loss per step](gradient_norms.png)" in report


def test_figure_is_a_png(experiment):
    output_dir, _, _ = experiment
    with open(os.path.join(output_dir, "gradient_norms.png"), "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_both_runs_side_by_side_in_tensorboard(experiment):
    output_dir, _, _ = experiment
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.tensorboard", "--output-dir", output_dir, "--print-only"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("clip=none: ") and "\nclip=global_norm: " in result.stdout
