"""A failure that is not bad input still reaches the user as one line: which component, what, where the
traceback is; exit status 3; nothing the failed component made is published."""
import os

from pipeline import metadata
from tests.e2e.run_cli import COMMON, copy_checkout, edit, run_pipeline


def test_an_unexpected_exception_in_a_component_is_one_line(tmp_path, mnist_slice):
    checkout = copy_checkout(str(tmp_path / "checkout"))
    edit(os.path.join(checkout, "components", "transform", "preprocessing.py"),
         '"divide": lambda pixels, options: pixels / options.divisor',
         '"divide": lambda pixels, options: {}["injected failure"]')  # a KeyError deep in tf.Transform's trace
    output_dir = str(tmp_path / "runs")
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON, cwd=checkout)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    log = next(line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("full log: "))
    assert lines[0] == (f"clipflow: failed: Transform failed: KeyError: 'injected failure'; "
                        f"the traceback is in {log} (--debug shows it here)")
    with open(log) as f:
        logged = f.read()
    assert "Traceback (most recent call last)" in logged and "injected failure" in logged

    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    executions = {e.node: e for e in metadata.run_executions(store, metadata.latest_run_id(store))}
    assert executions["Transform"].state == "FAILED" and "Trainer" not in executions
    types = {t.id: t.name for t in store.get_artifact_types()}
    live = {types[a.type_id] for a in store.get_artifacts() if a.state == a.LIVE}
    assert live == {"Schema", "Examples", "ExampleStatistics", "ExampleAnomalies"}  # upstream's, none of Transform's


def test_debug_shows_the_traceback_instead(tmp_path, mnist_slice):
    checkout = copy_checkout(str(tmp_path / "checkout"))
    edit(os.path.join(checkout, "components", "transform", "preprocessing.py"),
         '"divide": lambda pixels, options: pixels / options.divisor',
         '"divide": lambda pixels, options: {}["injected failure"]')
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", str(tmp_path / "runs"), *COMMON, "--debug",
                          cwd=checkout)
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr and "KeyError: 'injected failure'" in result.stderr
