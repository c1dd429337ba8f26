"""Where a run's outputs live: artifacts under ``pipeline.output_dir`` (any file
system TensorFlow opens), run state in a local folder (``pipeline.local_dir``)."""
from __future__ import annotations

import dataclasses
import os

from pipeline.config import PipelineSettings


@dataclasses.dataclass(frozen=True)
class RunPaths:
    output_dir: str
    local_dir: str

    @classmethod
    def of(cls, settings: PipelineSettings) -> "RunPaths":
        return cls(settings.output_dir, settings.local_dir)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline")

    @property
    def serving_model(self) -> str:
        return os.path.join(self.output_dir, "serving_model")

    @property
    def metadata_db(self) -> str:
        return os.path.join(self.local_dir, "metadata.sqlite")

    @property
    def summary(self) -> str:
        return os.path.join(self.local_dir, "summary.json")

    @property
    def tensorboard_experiment(self) -> str:
        """The HParams experiment ``pipeline.tools.tensorboard`` writes over every Trainer run."""
        return os.path.join(self.local_dir, "tensorboard")
