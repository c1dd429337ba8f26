"""Where a run's outputs live under ``pipeline.output_dir``."""
from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class RunPaths:
    output_dir: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline")

    @property
    def metadata_db(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_model(self) -> str:
        return os.path.join(self.output_dir, "serving_model")

    @property
    def summary(self) -> str:
        return os.path.join(self.output_dir, "summary.json")
