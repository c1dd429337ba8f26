"""Evaluator: TFX's component, whose executor keeps TFMA's model calls from formatting each batch into
an error message that is thrown away.

TFMA calls the serving signature with the batch of serialized examples as a positional argument.
TensorFlow's signatures take keywords only, so that call raises a TypeError, which TensorFlow catches
before calling the signature again through its flat argument list, which succeeds. The message of that
discarded TypeError holds the repr of the whole batch, and numpy writes arrays of up to 1,000 elements
in full: for a batch of 1,000 MNIST records, megabytes of text formatted per call, some twenty times
the model's own time (docs/benchmarks.md). While TFMA runs here, numpy summarizes any array of more than
``REPR_ELEMENTS`` elements instead. Nothing TFMA computes or writes changes; a message or log line
that prints an array shows its first and last few elements.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
from tfx.components.evaluator import component, executor
from tfx.dsl.components.base import executor_spec
from tfx.types import Artifact

REPR_ELEMENTS = 10  # numpy's print threshold while TFMA runs: larger arrays print summarized


def summarized_reprs():
    """The context TFMA runs in: numpy (and so a tensor's repr) summarizes arrays over REPR_ELEMENTS."""
    return np.printoptions(threshold=REPR_ELEMENTS)


class Executor(executor.Executor):
    def Do(self, input_dict: Dict[str, List[Artifact]], output_dict: Dict[str, List[Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        with summarized_reprs():
            super().Do(input_dict, output_dict, exec_properties)


class Evaluator(component.Evaluator):
    """TFX's Evaluator with the executor above (same spec, inputs, outputs and node id)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
