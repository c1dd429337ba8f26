"""The config, validated and made ready for the runner it names: writable output
folders and MNIST found for runners that execute here, paths a cluster can
reach for compiled ones. Shared by every command that runs the pipeline."""
from __future__ import annotations

import dataclasses
import json
import os
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence

from components.common.errors import ConfigError
from components.trainer import tf_config
from pipeline.config import EMBEDDED_RUNNERS, PipelineConfig, is_uri, load_config
from pipeline import sweep
from pipeline.data_source import resolve_data_dir


def check_writable(key: str, directory: str) -> str:
    """``directory`` (any file system TensorFlow opens), created and probed with a write;
    returned absolute when local."""
    import tensorflow as tf  # noqa: PLC0415  (slow import; only here, after the config parsed)

    directory = directory if is_uri(directory) else os.path.abspath(directory)
    probe = os.path.join(directory, ".clipflow-write-probe")
    try:
        tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except tf.errors.OpError as err:
        flag = "--" + key.split(".")[-1].replace("_", "-")
        raise ConfigError(f"{key} {directory} cannot be written ({err.message}); choose another {flag}") from None
    return directory


def with_local_paths(config: PipelineConfig, env_data_dir: Optional[str]) -> PipelineConfig:
    """Embedded runners: a TF_CONFIG the Trainer can use, writable output and metadata dirs, and MNIST
    found now (see data_source)."""
    tf_config.read()  # the Trainer runs here, under this environment
    settings = config.pipeline
    output_dir = check_writable("pipeline.output_dir", settings.output_dir)
    metadata_dir = check_writable("pipeline.metadata_dir", settings.metadata_dir) if settings.metadata_dir else ""
    return dataclasses.replace(
        config,
        pipeline=dataclasses.replace(settings, output_dir=output_dir, metadata_dir=metadata_dir),
        data=dataclasses.replace(config.data, data_dir=resolve_data_dir(config.data.data_dir, env_data_dir)),
    )


def with_cluster_paths(config: PipelineConfig) -> PipelineConfig:
    """Compiled runners: paths are read by the cluster, not here, so they are only checked for form
    (and $MNIST_DATA_DIR, a folder on this machine, is not used)."""
    for key, path, example in (
        ("pipeline.output_dir", config.pipeline.output_dir, "gs://BUCKET/clipflow"),
        ("data.data_dir", config.data.data_dir, "gs://BUCKET/mnist"),
    ):
        if not (is_uri(path) or os.path.isabs(path)):
            raise ConfigError(
                f"{key} {path!r} must be a URI or absolute path the cluster can reach with --runner "
                f"{config.pipeline.runner}; e.g. {example}"
            )
    return dataclasses.replace(
        config,
        kubeflow=dataclasses.replace(config.kubeflow, output_file=os.path.abspath(config.kubeflow.output_file)),
    )


def build_config(
    env_data_dir: Optional[str],
    config_file: Optional[str] = None,
    overrides: Sequence[str] = (),
    flags: Mapping[str, Any] = MappingProxyType({}),
) -> PipelineConfig:
    """The validated config, its paths made ready for the runner it names.

    ``flags`` (section.key -> value, None for unset) are overrides like any
    other, applied last."""
    settings = [*overrides, *(f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None)]
    config = load_config(config_file, settings)
    sweep.points(config)  # a grid whose points are not all valid configs is refused before anything runs
    if config.pipeline.runner in EMBEDDED_RUNNERS:
        return with_local_paths(config, env_data_dir)
    return with_cluster_paths(config)
