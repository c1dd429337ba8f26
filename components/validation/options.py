"""Training-health bars: read by the pipeline config without loading TensorFlow."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, List

from components.common.errors import ConfigError

if TYPE_CHECKING:
    from components.trainer.report import GradientReport


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
