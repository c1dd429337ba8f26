"""The training loop's tracing: one trace of the training function serves a whole run."""
import pytest

from components.trainer import clipping
from components.trainer.loop import TrainingLoop, make_loss
from components.trainer.model import MLP
from components.trainer.options import ClipOptions, TelemetryOptions, TrainerOptions
from components.trainer.session import make_optimizer
from components.trainer.telemetry import Telemetry
from tests.components.trainer.helpers import synthetic_split


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_training_function_is_traced_once_for_a_run(tmp_path, optimizer):
    """Two epochs of calls with and without histograms: one trace. (The optimizer's variables made in the
    first trace used to make TensorFlow trace the whole step a second time.)"""
    model = MLP((16,))
    telemetry = Telemetry(str(tmp_path), model.variable_names, TelemetryOptions(histogram_every_n_steps=2))
    loop = TrainingLoop(model, make_optimizer(TrainerOptions(optimizer=optimizer), total_steps=8), make_loss("mse"),
                        clipping.make_strategy(ClipOptions()), telemetry, batch_size=16)
    for epoch in range(2):
        assert len(loop.run_epoch(synthetic_split(), steps_per_call=3, seed=epoch).losses) == 4
    assert int(loop.step.numpy()) == 8
    assert loop.run_steps.experimental_get_tracing_count() == 1
