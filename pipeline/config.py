"""PipelineConfig: one frozen, typed, JSON-able object, validated once.

Built from defaults, then an optional TOML file, then ``--set
section.key=value`` overrides; every section is a dataclass whose
``__post_init__`` checks its values, so a config that exists is valid.
Component sections are defined next to the code that uses them (components
never import ``pipeline``) and travel to it through ``custom_config``.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Dict, Literal, Mapping, Sequence, Tuple

import tomli

from components.common.errors import ConfigError
from components.common.typed import from_dict, to_dict
from components.trainer.options import (
    CHECKPOINT_ROOT_KEY, NAME_KEY, STRATEGIES, ClipOptions, TelemetryOptions, TrainerOptions, check_strategy,
    reads_threshold,
)
from components.transform.options import ScalingOptions
from components.validation.options import HealthOptions

# Empty: Beam's own defaults, the in-process DirectRunner with one worker
# (for MNIST-sized data, worker processes cost more than they save). Any
# non-empty list makes TFX build a TFX source package for remote workers in
# every Beam component, a second or more each (docs/benchmarks.md).
DEFAULT_BEAM_ARGS: Tuple[str, ...] = ()

Runner = Literal["local", "beam", "kubeflow-v2"]
# Runners that execute here, SQLite ML Metadata in a local folder; also their module names in pipeline.runners.
EMBEDDED_RUNNERS = ("local", "beam")


def is_uri(path: str) -> bool:
    """gs://, s3://, hdfs://...: storage TensorFlow opens, but not a local folder."""
    return "://" in path


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    name: str = "clipflow"
    output_dir: str = "runs"  # artifacts and the serving model; any file system TensorFlow opens (gs://...)
    # Embedded runners: ML Metadata (SQLite), the run lock, logs and summary.json. They need a
    # local folder; empty means output_dir, which must then be local.
    metadata_dir: str = ""
    enable_cache: bool = True
    beam_args: Tuple[str, ...] = DEFAULT_BEAM_ARGS
    runner: Runner = "local"  # the orchestrator module under pipeline/runners/

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "_").isidentifier():
            raise ConfigError(f"pipeline.name must be letters, digits, '_' or '-' (got {self.name!r})")
        if not self.output_dir:
            raise ConfigError("pipeline.output_dir must not be empty; e.g. runs")
        if is_uri(self.metadata_dir):
            raise ConfigError(
                f"pipeline.metadata_dir {self.metadata_dir} must be a local folder (ML Metadata is a SQLite file); "
                "e.g. --metadata-dir runs/metadata"
            )
        if self.runner in EMBEDDED_RUNNERS and is_uri(self.output_dir) and not self.metadata_dir:
            raise ConfigError(
                f"pipeline.output_dir {self.output_dir} is not a local folder: the {self.runner} runner keeps "
                "ML Metadata (SQLite), the run lock and logs in one; add --metadata-dir LOCAL_FOLDER"
            )

    @property
    def local_dir(self) -> str:
        """Where embedded runners keep ML Metadata, the lock, logs and summary.json."""
        return self.metadata_dir or self.output_dir


@dataclasses.dataclass(frozen=True)
class KubeflowSettings:
    """For ``--runner kubeflow-v2``: what the compiled PipelineSpec names, and
    optionally the Vertex AI submission (project, region, service account)."""

    output_file: str = "clipflow_pipeline.json"  # the compiled PipelineSpec (JSON)
    image: str = "clipflow:latest"  # the image built from the Dockerfile, pushed where the cluster can pull it
    submit_vertex: bool = False
    project: str = ""
    region: str = ""
    service_account: str = ""  # empty: the project's default compute service account

    def __post_init__(self) -> None:
        if not self.output_file.endswith(".json"):
            raise ConfigError(f"kubeflow.output_file must end in .json (got {self.output_file!r}); e.g. --output pipeline.json")
        if not self.image:
            raise ConfigError("kubeflow.image must name the container image; e.g. --image gcr.io/PROJECT/clipflow:latest")
        if self.submit_vertex and not (self.project and self.region):
            raise ConfigError("--submit-vertex needs --project and --region (kubeflow.project, kubeflow.region)")


@dataclasses.dataclass(frozen=True)
class DataSettings:
    # A folder with the four IDX files (gzipped or not) or mnist.npz, or the
    # path of an .npz. Empty: $MNIST_DATA_DIR, the keras cache, a download.
    data_dir: str = ""


@dataclasses.dataclass(frozen=True)
class EvaluatorOptions:
    accuracy_threshold: float = 0.95  # bless when overall eval accuracy is at least this

    def __post_init__(self) -> None:
        if not 0.0 <= self.accuracy_threshold <= 1.0:
            raise ConfigError(f"evaluator.accuracy_threshold must be in [0, 1] (got {self.accuracy_threshold})")


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """The grid: strategies x thresholds x learning rates x divisors, each setting trained with every
    seed. Empty ``strategies``: no sweep."""

    strategies: Tuple[str, ...] = ()  # clip.strategy of each point
    thresholds: Tuple[float, ...] = ()  # clip.threshold, for the strategies that read one; empty: clip.threshold
    learning_rates: Tuple[float, ...] = ()  # trainer.learning_rate; empty: the configured one
    divisors: Tuple[float, ...] = ()  # transform.divisor (mode divide), one Transform each; empty: the configured one
    seeds: Tuple[int, ...] = ()  # trainer.seed of each setting's Trainers; empty: trainer.seed alone, not in the names
    max_trainers: int = 64  # settings x seeds above this are refused: a typo should not start a thousand Trainers

    def __post_init__(self) -> None:
        for axis in ("thresholds", "learning_rates", "divisors", "seeds"):
            if getattr(self, axis) and not self.strategies:
                raise ConfigError(f"sweep.{axis} needs sweep.strategies, the strategies to sweep; e.g. [\"global_norm\"]")
        for strategy in self.strategies:
            check_strategy(strategy, "sweep.strategies")
        for axis, valid, expected in (("thresholds", lambda v: v > 0, "> 0; e.g. [0.25, 0.5, 1.0]"),
                                      ("learning_rates", lambda v: v > 0, "> 0; e.g. [0.001, 0.003]"),
                                      ("divisors", lambda v: v != 0, "non-zero; e.g. [50, 255]")):
            for value in getattr(self, axis):
                if not valid(value):
                    raise ConfigError(f"sweep.{axis} must all be {expected} (got {value:g})")
        if self.thresholds and not any(reads_threshold(s) for s in self.strategies):
            readers = " and ".join(name for name in STRATEGIES if reads_threshold(name))
            raise ConfigError(f"sweep.thresholds: none of sweep.strategies reads a threshold ({readers} do)")
        self._check_seeds()
        if self.max_trainers < 1:
            raise ConfigError(f"sweep.max_trainers must be >= 1 (got {self.max_trainers})")

    def _check_seeds(self) -> None:
        negative = [seed for seed in self.seeds if seed < 0]
        if negative:
            raise ConfigError(f"sweep.seeds must all be >= 0 (got {negative[0]}); e.g. [0, 1, 2, 3]")
        twice = [seed for seed, n in collections.Counter(self.seeds).items() if n > 1]
        if twice:
            raise ConfigError(f"sweep.seeds has {twice[0]} twice; list each seed once, e.g. [0, 1, 2, 3]")

    @property
    def active(self) -> bool:
        return bool(self.strategies)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    pipeline: PipelineSettings = PipelineSettings()
    data: DataSettings = DataSettings()
    transform: ScalingOptions = ScalingOptions()
    trainer: TrainerOptions = TrainerOptions()
    clip: ClipOptions = ClipOptions()
    telemetry: TelemetryOptions = TelemetryOptions()
    evaluator: EvaluatorOptions = EvaluatorOptions()
    health: HealthOptions = HealthOptions()
    kubeflow: KubeflowSettings = KubeflowSettings()
    sweep: SweepSettings = SweepSettings()

    def __post_init__(self) -> None:
        if self.trainer.workers > 1 and self.pipeline.runner != "kubeflow-v2":
            raise ConfigError(
                f"trainer.workers = {self.trainer.workers} runs the Trainer on Vertex AI Training worker pools: "
                "add --runner kubeflow-v2 (a cluster of your own sets TF_CONFIG instead; docs/scaling.md)"
            )
        if self.trainer.workers > 1 and not (self.kubeflow.project and self.kubeflow.region):
            raise ConfigError(
                f"trainer.workers = {self.trainer.workers} needs --project and --region (kubeflow.project, "
                "kubeflow.region): the Vertex AI Training job of the Trainer runs there"
            )

    def to_dict(self) -> Dict[str, Any]:
        return to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PipelineConfig":
        return from_dict(cls, data)

    def transform_custom_config(self) -> Dict[str, Any]:
        """Only what Transform depends on, so other changes keep its cache."""
        return {"scaling": to_dict(self.transform)}

    def trainer_custom_config(self, name: str = "Trainer") -> Dict[str, Any]:
        """The Trainer's settings, plus Transform's to record with its run (TensorBoard's HParams):
        a Transform change re-runs the Trainer anyway (a new transform graph), so its cache loses nothing."""
        return {
            "trainer": to_dict(self.trainer), "clip": to_dict(self.clip), "telemetry": to_dict(self.telemetry),
            "transform": to_dict(self.transform),
            CHECKPOINT_ROOT_KEY: os.path.join(self.pipeline.output_dir, "checkpoints"), NAME_KEY: name,
        }


def parse_override(text: str) -> Tuple[Tuple[str, ...], Any]:
    """``section.key=value`` -> (("section", "key"), value); value read as TOML, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes section.key=value, got {text!r}")
    try:
        value = tomli.loads(f"v = {raw.strip()}")["v"]
    except tomli.TOMLDecodeError:
        value = raw.strip()
    return tuple(part.strip() for part in key.split(".")), value


def _merge(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(config_file: str | None = None, overrides: Sequence[str] = ()) -> PipelineConfig:
    """Defaults -> TOML file -> overrides, then one validation pass."""
    data = PipelineConfig().to_dict()
    if config_file:
        try:
            with open(config_file, "rb") as f:
                data = _merge(data, tomli.load(f))
        except OSError as err:
            raise ConfigError(f"cannot read config file {config_file}: {err.strerror}") from None
        except tomli.TOMLDecodeError as err:
            raise ConfigError(f"config file {config_file} is not valid TOML: {err}") from None
    for text in overrides:
        path, value = parse_override(text)
        update: Dict[str, Any] = {path[-1]: value}
        for part in reversed(path[:-1]):
            update = {part: update}
        data = _merge(data, update)
    return PipelineConfig.from_dict(data)
