import pytest

from tests.e2e.run_cli import COMMON, run_pipeline


@pytest.fixture(scope="session")
def first_run(mnist_slice, tmp_path_factory):
    """The local runner's run on the slice: checked by test_pipeline, the reference of test_runners.

    Later tests re-run in the same output dir; the first pipeline run stays in its ML Metadata."""
    output_dir = str(tmp_path_factory.mktemp("e2e") / "runs")
    result = run_pipeline("--data-dir", mnist_slice, "--output-dir", output_dir, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result
