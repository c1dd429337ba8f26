"""MnistExampleGen: a FileBasedExampleGen whose executor reads IDX or npz.

Splits follow MNIST's official split, not a hash re-split: ``train`` is the
60,000 training images, ``eval`` the 10,000 t10k images. For IDX data each
split's pattern selects its two files (``train-*``, ``t10k-*``); keras'
``mnist.npz`` holds both splits in one file, so the executor passes the split
name along with the pattern.

An IDX split is read in record-range chunks: one element checks the files
(streaming the images file) and plans the chunks, and each chunk is then its
own Beam element, so a distributed runner reads them in parallel and no
element holds a whole images file. An npz member is one zip stream, read
whole by one element. Records stream from their chunk into the split's files,
without the shuffle TFX puts before writing (``Executor.Do``), so memory holds
about a chunk whatever the size of the split.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Iterator, List

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor, utils
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import Artifact, artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.common.errors import DataError
from components.example_gen import readers, records

IDX_PATTERNS = {"train": "train-*", "eval": "t10k-*"}
CHUNK_RECORDS = 10_000  # images per chunk: 7.8 MB of pixels
RECORDS_FILE = "data_tfrecord"  # the name TFX's ExampleGen gives a split's files


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
        """The whole split in memory (tools that want the arrays; the ExampleGen reads chunks)."""
        if self.images_path.endswith(".npz"):
            return readers.read_npz_split(self.images_path, self.split)
        return readers.read_idx_split(self.images_path, self.labels_path)

    def chunks(self, scratch_dir: str) -> Iterator["Chunk"]:
        """The split's chunks, once its files passed every check (a bad file fails here, in one line);
        a gzipped images file is decompressed once, into ``scratch_dir``, and read from there."""
        if self.images_path.endswith(".npz"):
            yield Chunk(self.split, self.images_path, 0, 0, b"")
            return
        plan = readers.plan_idx_split(self.images_path, self.labels_path, scratch_dir)
        for start in range(0, plan.count, CHUNK_RECORDS):
            stop = min(start + CHUNK_RECORDS, plan.count)
            yield Chunk(self.split, plan.images_path, start, stop, plan.labels[start:stop])


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Images ``start`` to ``stop - 1`` of a checked IDX file and their labels; of an npz, the whole split."""

    split: str
    images_path: str
    start: int
    stop: int
    labels: bytes

    def examples(self) -> Iterator[bytes]:
        if self.images_path.endswith(".npz"):  # the rule SplitSource.read follows
            images, labels = readers.read_npz_split(self.images_path, self.split)
        else:
            images = readers.read_idx_range(self.images_path, self.start, self.stop)
            labels = np.frombuffer(self.labels, dtype=np.uint8)
        return records.serialize_examples(images, labels)


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


@beam.ptransform_fn
def _ReadSplit(pipeline: beam.Pipeline, source: SplitSource, scratch_dir: str) -> beam.PCollection:
    return (
        pipeline
        | "Locate" >> beam.Create([source])
        | "Plan" >> beam.FlatMap(SplitSource.chunks, scratch_dir)
        | "Spread" >> beam.Reshuffle()  # the chunks to as many workers as the runner has
        | "Serialize" >> beam.FlatMap(Chunk.examples)
    )


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Reads each input split by name and pattern; no output re-splitting."""

    def Do(self, input_dict: Dict[str, List[Artifact]], output_dict: Dict[str, List[Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """TFX's ``Do`` (tfx/components/example_gen/base_example_gen_executor.py) without the Reshuffle
        its WriteSplit puts before writing ("TODO: make shuffle optional"): a shuffle groups every
        record of a split, which Beam's in-process runner holds in memory at once, while the records
        streaming from their chunk to the file hold one chunk. Nothing downstream reads the files'
        order: the Trainer orders records by a hash of their bytes (components/trainer/data.py)."""
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config, output_config = example_gen_pb2.Input(), example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact_utils.get_single_instance(examples).split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config)
        )
        scratch_dir = os.path.join(artifact_utils.get_single_uri(examples), "decompressed")
        try:
            with self._make_beam_pipeline() as pipeline:
                for split, serialized in self.GenerateExamplesByBeam(pipeline, exec_properties, scratch_dir).items():
                    # Uncompressed, unlike TFX's ExampleGen: gzip costs more time to write and to read back
                    # than the disk it saves is worth to a run (docs/benchmarks.md, "Whole pipeline").
                    _ = serialized | f"WriteSplit[{split}]" >> beam.io.WriteToTFRecord(
                        os.path.join(artifact_utils.get_split_uri(examples, split), RECORDS_FILE)
                    )
        finally:  # the artifact holds its splits only
            if tf.io.gfile.exists(scratch_dir):
                tf.io.gfile.rmtree(scratch_dir)
        for artifact in examples:  # what StatisticsGen and Transform read the records as
            examples_utils.set_payload_format(artifact, exec_properties[standard_component_specs.OUTPUT_DATA_FORMAT_KEY])

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ReadSplit

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any], scratch_dir: str):
        config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties["input_config"], config)
        sources = [locate_split(exec_properties["input_base"], s.name, s.pattern) for s in config.splits]
        return {s.split: pipeline | f"Read[{s.split}]" >> _ReadSplit(s, scratch_dir) for s in sources}


class MnistExampleGen(FileBasedExampleGen):
    """FileBasedExampleGen (fingerprinting, caching, spans) with the MNIST reader."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
