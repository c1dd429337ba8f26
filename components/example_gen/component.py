"""MnistExampleGen: a FileBasedExampleGen whose executor reads IDX or npz.

Splits follow MNIST's official split, not a hash re-split: ``train`` is the
60,000 training images, ``eval`` the 10,000 t10k images. For IDX data each
split's pattern selects its two files (``train-*``, ``t10k-*``); keras'
``mnist.npz`` holds both splits in one file, so the executor passes the split
name along with the pattern.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from components.common.errors import DataError
from components.example_gen import readers, records

IDX_PATTERNS = {"train": "train-*", "eval": "t10k-*"}


def input_config(data_file: str | None) -> example_gen_pb2.Input:
    """Split patterns: IDX files by prefix, or one npz file for both splits."""
    patterns = {split: data_file for split in IDX_PATTERNS} if data_file else IDX_PATTERNS
    return example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=name, pattern=p) for name, p in patterns.items()]
    )


@dataclasses.dataclass(frozen=True)
class SplitSource:
    """Where one split's records come from; small and picklable for Beam."""

    split: str
    images_path: str
    labels_path: str = ""  # empty for npz, whose one file holds both arrays

    def read(self) -> readers.Split:
        if self.images_path.endswith(".npz"):
            return readers.read_npz_split(self.images_path, self.split)
        return readers.read_idx_split(self.images_path, self.labels_path)


def locate_split(input_base: str, split: str, pattern: str) -> SplitSource:
    """Finds the files of one split under ``input_base``, or says what is missing."""
    matches = sorted(tf.io.gfile.glob(os.path.join(input_base, pattern)))
    if pattern.endswith(".npz"):
        if not matches:
            raise DataError(f"{os.path.join(input_base, pattern)}: file not found; check the data directory")
        return SplitSource(split, matches[0])
    prefix = pattern.rstrip("*")
    images = [m for m in matches if "-images-" in os.path.basename(m)]
    labels = [m for m in matches if "-labels-" in os.path.basename(m)]
    for kind, found in (("images", images), ("labels", labels)):
        if not found:
            raise DataError(
                f"{input_base}: no {prefix}{kind}-idx*-ubyte[.gz] file for the {split} split; "
                "point --data-dir at the folder holding the four MNIST IDX files"
            )
        if len(found) > 1:
            raise DataError(f"{input_base}: several {prefix}{kind} files ({', '.join(found)}); keep exactly one")
    return SplitSource(split, images[0], labels[0])


def _to_examples(source: SplitSource):
    images, labels = source.read()
    return records.serialize_examples(images, labels)


@beam.ptransform_fn
def _ReadSplit(pipeline: beam.Pipeline, source: SplitSource) -> beam.PCollection:
    return pipeline | "Locate" >> beam.Create([source]) | "Serialize" >> beam.FlatMap(_to_examples)


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Reads each input split by name and pattern; no output re-splitting."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ReadSplit

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]):
        config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties["input_config"], config)
        sources = [locate_split(exec_properties["input_base"], s.name, s.pattern) for s in config.splits]
        return {s.split: pipeline | f"Read[{s.split}]" >> _ReadSplit(s) for s in sources}


class MnistExampleGen(FileBasedExampleGen):
    """FileBasedExampleGen (fingerprinting, caching, spans) with the MNIST reader."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
