"""A sweep: a grid of clip settings as one TFX pipeline, and the rule that names its best point.

The ``[sweep]`` section of the config turns the one Trainer into one Trainer
and one Evaluator per grid point (ids ``Trainer.<point>``), after ingest,
statistics, validation and Transform that run once (once per swept scaling
divisor). As a config section it reaches every runner unchanged: the local
and Beam runners, a compiled KFP spec, the Airflow DAG. TFX caches each node
by its own id, so adding a point to a grid trains only that point.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from components.common.errors import ConfigError
from components.trainer.options import RENAMED_STRATEGIES, STRATEGY_SETTINGS

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """The grid: strategies x thresholds x learning rates x divisors. Empty ``strategies``: no sweep."""

    strategies: Tuple[str, ...] = ()  # clip.strategy of each point
    thresholds: Tuple[float, ...] = ()  # clip.threshold, for the strategies that read one; empty: clip.threshold
    learning_rates: Tuple[float, ...] = ()  # trainer.learning_rate; empty: the configured one
    divisors: Tuple[float, ...] = ()  # transform.divisor (mode divide), one Transform each; empty: the configured one

    def __post_init__(self) -> None:
        for axis in ("thresholds", "learning_rates", "divisors"):
            if getattr(self, axis) and not self.strategies:
                raise ConfigError(f"sweep.{axis} needs sweep.strategies, the strategies to sweep; e.g. [\"global_norm\"]")
        for strategy in self.strategies:
            if strategy in RENAMED_STRATEGIES:
                raise ConfigError(f"sweep.strategies: {strategy!r} is renamed: use {RENAMED_STRATEGIES[strategy]}")
            if strategy not in STRATEGY_SETTINGS:
                raise ConfigError(f"unknown strategy {strategy!r} in sweep.strategies; known: {', '.join(STRATEGY_SETTINGS)}")
        for axis, valid, expected in (("thresholds", lambda v: v > 0, "> 0; e.g. [0.25, 0.5, 1.0]"),
                                      ("learning_rates", lambda v: v > 0, "> 0; e.g. [0.001, 0.003]"),
                                      ("divisors", lambda v: v != 0, "non-zero; e.g. [50, 255]")):
            for value in getattr(self, axis):
                if not valid(value):
                    raise ConfigError(f"sweep.{axis} must all be {expected} (got {value:g})")
        if self.thresholds and not any("threshold" in STRATEGY_SETTINGS[s] for s in self.strategies):
            raise ConfigError("sweep.thresholds: none of sweep.strategies reads a threshold (norm and global_norm do)")

    @property
    def active(self) -> bool:
        return bool(self.strategies)


@dataclasses.dataclass(frozen=True)
class Point:
    name: str  # what differs, e.g. "global_norm-0.5" or "none": the suffix of its component ids
    config: "PipelineConfig"  # the whole config this point trains with (its sweep section empty)

    @property
    def trainer_id(self) -> str:
        return f"Trainer.{self.name}"

    @property
    def evaluator_id(self) -> str:
        return f"Evaluator.{self.name}"


def points(config: "PipelineConfig") -> List[Point]:
    """The grid's points in the order given, each as a whole (validated) config; none without a sweep."""
    sweep = config.sweep
    if not sweep.active:
        return []
    if sweep.divisors and config.transform.mode != "divide":
        raise ConfigError(f"sweep.divisors need transform.mode = \"divide\" (got {config.transform.mode!r})")
    found: Dict[str, Point] = {}
    for strategy in sweep.strategies:
        thresholds = (sweep.thresholds or (config.clip.threshold,)) if "threshold" in STRATEGY_SETTINGS[strategy] else (None,)
        for threshold, rate, divisor in itertools.product(thresholds, sweep.learning_rates or (None,), sweep.divisors or (None,)):
            name = "-".join([strategy, *_part("", threshold), *_part("lr", rate), *_part("div", divisor)])
            if name in found:
                raise ConfigError(f"the sweep has the point {name} twice; list each strategy and value once")
            found[name] = Point(name, _point_config(config, strategy, threshold, rate, divisor))
    return list(found.values())


def _part(prefix: str, value: Optional[float]) -> List[str]:
    return [] if value is None else [f"{prefix}{value:g}"]


def _point_config(config: "PipelineConfig", strategy: str, threshold, rate, divisor) -> "PipelineConfig":
    clip = dataclasses.replace(config.clip, strategy=strategy,
                               threshold=config.clip.threshold if threshold is None else threshold)
    trainer = dataclasses.replace(config.trainer, learning_rate=config.trainer.learning_rate if rate is None else rate)
    transform = dataclasses.replace(config.transform, divisor=config.transform.divisor if divisor is None else divisor)
    return dataclasses.replace(config, clip=clip, trainer=trainer, transform=transform, sweep=SweepSettings())


def best(results: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The point with the highest eval accuracy; ties go to the one that clipped fewer steps
    (the lighter touch). Points without an evaluation are not candidates."""
    scored = [r for r in results if r.get("eval_accuracy") is not None and math.isfinite(r["eval_accuracy"])]
    if not scored:
        return None
    return max(scored, key=lambda r: (r["eval_accuracy"], -r["gradient_report"]["clipped_fraction"]))
