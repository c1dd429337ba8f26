"""A sweep: a grid of clip settings, each trained with one or more seeds, as one TFX pipeline.

The ``[sweep]`` section of the config turns the one Trainer into one Trainer
and one Evaluator per grid point and seed (ids ``Trainer.<point>``, the
point's name ending in ``-seed<k>`` when seeds are swept), after ingest,
statistics, validation and Transform that run once (once per swept scaling
divisor). As a config section it reaches every runner unchanged: the local
and Beam runners, a compiled KFP spec, the Airflow DAG. TFX caches each node
by its own id, so adding a point or a seed trains only what is new.
pipeline/verdict.py names the best setting, when the seeds' noise allows.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Dict, List, Optional

from components.common.errors import ConfigError
from components.trainer.options import reads_threshold
from pipeline.config import PipelineConfig, SweepSettings


@dataclasses.dataclass(frozen=True)
class Point:
    name: str  # what differs, e.g. "global_norm-0.5" or "none-seed3": the suffix of its component ids
    config: PipelineConfig  # the whole config this point trains with (its sweep section empty)
    setting: str  # the name without the seed: the points of one setting differ only in their seed

    @property
    def trainer_id(self) -> str:
        return f"Trainer.{self.name}"

    @property
    def evaluator_id(self) -> str:
        return f"Evaluator.{self.name}"


def points(config: PipelineConfig) -> List[Point]:
    """The grid's points in the order given, each setting once per seed, each as a whole (validated)
    config; none without a sweep."""
    sweep = config.sweep
    if not sweep.active:
        return []
    if sweep.divisors and config.transform.mode != "divide":
        raise ConfigError(f"sweep.divisors need transform.mode = \"divide\" (got {config.transform.mode!r})")
    settings: Dict[str, PipelineConfig] = {}
    for strategy in sweep.strategies:
        thresholds = (sweep.thresholds or (config.clip.threshold,)) if reads_threshold(strategy) else (None,)
        for threshold, rate, divisor in itertools.product(thresholds, sweep.learning_rates or (None,), sweep.divisors or (None,)):
            name = "-".join([strategy, *_part("", threshold), *_part("lr", rate), *_part("div", divisor)])
            if name in settings:
                raise ConfigError(f"the sweep has the point {name} twice; list each strategy and value once")
            settings[name] = _point_config(config, strategy, threshold, rate, divisor)
    trainers = len(settings) * max(len(sweep.seeds), 1)
    if trainers > sweep.max_trainers:
        raise ConfigError(
            f"the sweep has {len(settings)} settings x {max(len(sweep.seeds), 1)} seed(s) = {trainers} Trainers, more "
            f"than sweep.max_trainers = {sweep.max_trainers}; shrink the grid or the seeds, or raise sweep.max_trainers"
        )
    if not sweep.seeds:
        return [Point(name, point_config, name) for name, point_config in settings.items()]
    return [Point(f"{name}-seed{seed}", _with_seed(point_config, seed), name)
            for name, point_config in settings.items() for seed in sweep.seeds]


def _part(prefix: str, value: Optional[float]) -> List[str]:
    return [] if value is None else [f"{prefix}{value:g}"]


def _point_config(config: PipelineConfig, strategy: str, threshold, rate, divisor) -> PipelineConfig:
    clip = dataclasses.replace(config.clip, strategy=strategy,
                               threshold=config.clip.threshold if threshold is None else threshold)
    trainer = dataclasses.replace(config.trainer, learning_rate=config.trainer.learning_rate if rate is None else rate)
    transform = dataclasses.replace(config.transform, divisor=config.transform.divisor if divisor is None else divisor)
    return dataclasses.replace(config, clip=clip, trainer=trainer, transform=transform, sweep=SweepSettings())


def _with_seed(config: PipelineConfig, seed: int) -> PipelineConfig:
    return dataclasses.replace(config, trainer=dataclasses.replace(config.trainer, seed=seed))
