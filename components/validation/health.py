"""TrainingHealthGate: the final blessing, refused when training was unhealthy.

The Evaluator blesses on accuracy alone. This gate reads the Trainer's
gradient report and passes the Evaluator's verdict on only if training met
the configured health bars (off by default), so a model that diverged or
spent most steps clipped can be kept from the Pusher even when it scores.
"""
# No `from __future__ import annotations`: TFX reads these annotations at runtime.
import dataclasses
import json
import os
from typing import List

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ModelBlessing, ModelRun

from components.common.errors import ConfigError
from components.common.typed import from_dict
from components.trainer.report import GradientReport

PROBLEMS_PROPERTY = "health_problems"


@dataclasses.dataclass(frozen=True)
class HealthOptions:
    enabled: bool = False  # off: the Evaluator's blessing stands alone
    max_nonfinite_steps: int = 0  # more NaN/Inf steps than this: unhealthy
    max_clipped_fraction: float = 1.0  # a larger fraction of clipped steps: unhealthy

    def __post_init__(self) -> None:
        if self.max_nonfinite_steps < 0:
            raise ConfigError(f"health.max_nonfinite_steps must be >= 0 (got {self.max_nonfinite_steps})")
        if not 0.0 <= self.max_clipped_fraction <= 1.0:
            raise ConfigError(f"health.max_clipped_fraction must be in [0, 1] (got {self.max_clipped_fraction})")

    def problems(self, report: GradientReport) -> List[str]:
        """What was unhealthy about a training run; empty when healthy or when checks are off."""
        if not self.enabled:
            return []
        found = []
        if report.diverged_at_step is not None:
            found.append(f"training diverged at step {report.diverged_at_step}")
        if report.nonfinite_steps > self.max_nonfinite_steps:
            found.append(f"{report.nonfinite_steps} non-finite steps (allowed {self.max_nonfinite_steps})")
        if report.clipped_fraction > self.max_clipped_fraction:
            found.append(f"{report.clipped_fraction:.1%} of steps clipped (allowed {self.max_clipped_fraction:.1%})")
        return found


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
