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
    final_blessing: OutputArtifact[ModelBlessing],
) -> None:
    """Blessed = the Evaluator blessed it and training was healthy.

    The output is not called ``blessing`` like the Evaluator's: TFX's legacy
    drivers (the Airflow runner) name artifacts ``<output key>:<run id>``, and
    two ModelBlessings of one run under one key collide in ML Metadata."""
    options = from_dict(HealthOptions, json.loads(health), "health")
    problems = options.problems(GradientReport.read(model_run.uri))
    blessed = evaluator_blessing.get_int_custom_property("blessed") == 1 and not problems
    final_blessing.set_int_custom_property("blessed", int(blessed))
    final_blessing.set_string_custom_property(PROBLEMS_PROPERTY, "; ".join(problems))
    with tf.io.gfile.GFile(os.path.join(final_blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
        f.write("; ".join(problems))
