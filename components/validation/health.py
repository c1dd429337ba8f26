"""TrainingHealthGate: the final blessing, refused when training was unhealthy.

The Evaluator blesses on accuracy alone. This gate reads the Trainer's
gradient report and passes the Evaluator's verdict on only if training met
the configured health bars (off by default), so a model that diverged or
spent most steps clipped can be kept from the Pusher even when it scores.
"""
# No `from __future__ import annotations`: TFX reads these annotations at runtime.
import json
import os

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ModelBlessing, ModelRun

from components.common.typed import from_dict
from components.trainer.report import GradientReport
from components.validation.options import HealthOptions

PROBLEMS_PROPERTY = "health_problems"


@component
def TrainingHealthGate(  # noqa: N802 (TFX component name)
    evaluator_blessing: InputArtifact[ModelBlessing],
    model_run: InputArtifact[ModelRun],
    health: Parameter[str],
    blessing: OutputArtifact[ModelBlessing],
) -> None:
    """Blessed = the Evaluator blessed it and training was healthy."""
    options = from_dict(HealthOptions, json.loads(health), "health")
    problems = options.problems(GradientReport.read(model_run.uri))
    blessed = evaluator_blessing.get_int_custom_property("blessed") == 1 and not problems
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_string_custom_property(PROBLEMS_PROPERTY, "; ".join(problems))
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
        f.write("; ".join(problems))
