import os
import signal

import pytest

import components  # noqa: F401  (Keras choice before TensorFlow loads)
from tests import idx_files
from tests.shared import made_once


def pytest_configure():
    """Ctrl-C reaches the processes the tests start and interrupt, however the suite was launched: a
    shell's ``&`` starts it with SIGINT ignored, which every process it starts would inherit."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items):
    """The real pipeline runs (tests/e2e) first: under ``make test``'s workers (pytest-xdist, a module at a time)
    the long ones start early and the many short unit tests fill the end."""
    items.sort(key=lambda item: f"{os.sep}e2e{os.sep}" not in str(item.fspath))


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
    """A small slice of real MNIST (4000 train, 1000 eval) as gzipped IDX files, one for all workers (the
    pipeline runs they share read it at its path)."""
    return made_once(tmp_path_factory, "mnist_slice",
                     lambda folder: idx_files.write_real_slice(real_mnist, folder, 4000, 1000))
