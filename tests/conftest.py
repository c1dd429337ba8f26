import os
import signal

import pytest

import components  # noqa: F401  (Keras choice before TensorFlow loads)
from tests import idx_files


def pytest_configure():
    """Ctrl-C reaches the processes the tests start and interrupt, however the suite was launched: a
    shell's ``&`` starts it with SIGINT ignored, which every process it starts would inherit."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def real_mnist() -> str:
    """Full MNIST; required in CI, skipped elsewhere when absent."""
    found = idx_files.real_mnist_dir()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs real MNIST: set MNIST_DATA_DIR or put ../shared/data/mnist beside the checkout")
        pytest.skip("real MNIST not found (set MNIST_DATA_DIR)")
    return found


@pytest.fixture(scope="session")
def mnist_slice(real_mnist, tmp_path_factory) -> str:
    """A small slice of real MNIST (4000 train, 1000 eval) as gzipped IDX files."""
    return idx_files.write_real_slice(real_mnist, str(tmp_path_factory.mktemp("mnist_slice")), 4000, 1000)
