"""A failure that is not bad input still reaches the user as one line: which component, what, where the
traceback is; exit status 3; nothing the failed component made is published. ``--debug`` shows the traceback."""
import os

import pytest

from pipeline import metadata
from tests.e2e.run_cli import COMMON, copy_checkout, edit, run_pipeline, seeded_output_dir


def _live(output_dir: str) -> dict:
    """The LIVE artifacts of the output dir's ML Metadata: id -> type name."""
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    types = {t.id: t.name for t in store.get_artifact_types()}
    return {a.id: types[a.type_id] for a in store.get_artifacts() if a.state == a.LIVE}


@pytest.fixture(scope="module")
def failing(first_run, mnist_slice, tmp_path_factory):
    """A checkout whose preprocessing raises (a KeyError deep in tf.Transform's trace), run on an output dir
    seeded with the first run's ML Metadata (ingest and validation come from the cache): as a user runs it,
    then again with --debug. What ML Metadata held before and after the first is kept."""
    root = tmp_path_factory.mktemp("failing")
    checkout = copy_checkout(str(root / "checkout"))
    edit(os.path.join(checkout, "components", "transform", "preprocessing.py"),
         '"divide": lambda pixels, options: pixels / options.divisor',
         '"divide": lambda pixels, options: {}["injected failure"]')
    output_dir = seeded_output_dir(first_run, root / "runs")
    live_before = _live(output_dir)
    plain = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON, cwd=checkout)
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    executions = {e.node: e.state for e in metadata.run_executions(store, metadata.latest_run_id(store))}
    live_after = _live(output_dir)
    debug = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON, "--debug", cwd=checkout)
    return plain, executions, live_before, live_after, debug


def test_an_unexpected_exception_in_a_component_is_one_line(failing):
    result, executions, live_before, live_after, _ = failing
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    log = next(line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("full log: "))
    assert lines[0] == (f"clipflow: failed: Transform failed: KeyError: 'injected failure'; "
                        f"the traceback is in {log} (--debug shows it here)")
    with open(log) as f:
        logged = f.read()
    assert "Traceback (most recent call last)" in logged and "injected failure" in logged

    assert executions["Transform"] == "FAILED" and "Trainer" not in executions
    assert executions["MnistExampleGen"] == "CACHED"
    # Published by this run: only what ran again before Transform (the checkout's schema is another path, so
    # the schema and its validation); none of Transform's outputs, nothing after it.
    published = {kind for artifact, kind in live_after.items() if artifact not in live_before}
    assert published == {"Schema", "ExampleAnomalies"}, published


def test_debug_shows_the_traceback_instead(failing):
    result = failing[-1]
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr and "KeyError: 'injected failure'" in result.stderr
