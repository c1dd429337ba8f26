"""Scaling options: the only setting Transform depends on (so Trainer-only
changes leave Transform's cache valid)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from components.common.errors import ConfigError

ScalingMode = Literal["divide", "min_max", "z_score"]


@dataclasses.dataclass(frozen=True)
class ScalingOptions:
    """``divide``: pixels / divisor (255 is sane, 50 provokes exploding
    gradients); ``min_max``: to [0, 1] with the data's own min and max;
    ``z_score``: zero mean, unit variance over all pixels."""

    mode: ScalingMode = "divide"
    divisor: float = 255.0

    def __post_init__(self) -> None:
        if self.mode == "divide" and self.divisor == 0:
            raise ConfigError("transform.divisor must not be 0; use 255 to map pixels to [0, 1]")
