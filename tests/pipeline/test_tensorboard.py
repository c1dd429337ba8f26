"""Run naming, and a real TensorBoard server on 127.0.0.1 serving our tags over HTTP."""
import json
import socket
import urllib.parse
import urllib.request

import pytest

from components.trainer.options import ClipOptions
from pipeline.tensorboard import TrainerRun, logdir_spec, run_names, start_server
from tests.components.trainer_helpers import tiny_run


def _run(i, **settings):
    base = {"transform.divisor": 255.0, "clip.strategy": "global_norm", "trainer.epochs": 3}
    return TrainerRun(i, f"/logs/{i}", {**base, **settings})


def test_runs_are_named_by_the_settings_that_differ():
    runs = [_run(1, **{"transform.divisor": 50.0, "clip.strategy": "none"}), _run(2, **{"transform.divisor": 50.0}),
            _run(3)]
    assert run_names(runs) == ["scale=50,clip=none", "scale=50,clip=global_norm", "scale=255,clip=global_norm"]
    assert logdir_spec(runs[:1]) == "trainer-1:/logs/1"


def test_identical_settings_are_told_apart():
    assert run_names([_run(4), _run(9)]) == ["trainer-4", "trainer-9"]
    assert run_names([_run(4), _run(9), _run(10, **{"trainer.epochs": 5})]) == [
        "epochs=3,trainer-4", "epochs=3,trainer-9", "epochs=5,trainer-10"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def test_real_tensorboard_serves_pre_and_post_clip_data(tmp_path):
    clipped, unclipped = str(tmp_path / "a"), str(tmp_path / "b")
    tiny_run(clipped, clip=ClipOptions(strategy="global_norm", threshold=0.5))
    tiny_run(unclipped, clip=ClipOptions(strategy="none"))
    spec = logdir_spec([TrainerRun(1, clipped, {"clip.strategy": "global_norm"}),
                        TrainerRun(2, unclipped, {"clip.strategy": "none"})])
    url = start_server(spec, "127.0.0.1", _free_port())
    assert url.startswith("http://127.0.0.1:")
    run = "clip=global_norm/train"
    for _ in range(60):  # TensorBoard loads event files in the background
        runs = _get(url + "data/runs")
        if run in runs and "clip=none/train" in runs:
            tags = _get(url + "data/plugin/scalars/tags").get(run, {})
            if "grad_norm/post_clip" in tags:
                break
        import time
        time.sleep(1)
    else:
        pytest.fail(f"TensorBoard never showed the runs: {runs}")
    query = lambda tag: urllib.parse.urlencode({"run": run, "tag": tag})
    pre = _get(url + "data/plugin/scalars/scalars?" + query("grad_norm/pre_clip"))
    post = _get(url + "data/plugin/scalars/scalars?" + query("grad_norm/post_clip"))
    assert [p[1] for p in pre] == list(range(12)) and [p[1] for p in post] == list(range(12))
    assert all(p[2] <= 0.5 * (1 + 1e-5) for p in post)
    assert any(p[2] > 0.5 for p in pre)
    for when in ("pre_clip", "post_clip"):
        histograms = _get(url + "data/plugin/histograms/histograms?" + query(f"grad_hist/{when}/dense_0/kernel"))
        assert [h[1] for h in histograms] == [0, 5, 10]
        assert sum(bucket[2] for bucket in histograms[0][2]) == 784 * 16
