"""bench.trainer_throughput: a batch size it cannot measure ends the bench in one line naming it, before any
variant is built."""
import pytest

from bench import trainer_throughput

pytestmark = pytest.mark.slow  # reads all of MNIST's training images, as the bench does


@pytest.mark.parametrize("argv, message", [
    (["--batch", "0"], "--batch is 0: it must be between 1 and the 60000 training images"),
    (["--batch", "60001", "--only", "limit"], "--batch is 60001: it must be between 1 and the 60000 training images"),
    (["--batch", "2048"], "--steps x --batch is 921600: Keras fit's rows take one pass over the 60000 images"),
])
def test_a_batch_it_cannot_measure_is_one_line(argv, message, real_mnist, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_DATA_DIR", real_mnist)
    monkeypatch.setattr("sys.argv", ["trainer_throughput.py", *argv])
    with pytest.raises(SystemExit) as stopped:
        trainer_throughput.main()
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"trainer_throughput.py: error: {message}")
