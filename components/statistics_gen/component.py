"""StatisticsGen: TFX's component, whose executor computes TFDV's statistics in this process when
Beam would run in this process anyway.

With no Beam args, TFX's executor runs TFDV on Beam's in-memory DirectRunner: one process, one
thread, and most of its time spent in Beam's machinery rather than in TFDV (docs/benchmarks.md). The
same statistics come from TFDV's own generators fed directly: every record of every split, read in
batches (memory holds a batch and the generators' accumulators, whatever the size of the split), the
same quantiles and histograms, the same output file and artifact properties. With any Beam args (a
runner the user chose, worker processes) or any setting besides the defaults, TFX's own executor
runs, unchanged.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List

import pyarrow as pa
import tensorflow as tf
from tensorflow_data_validation.statistics import stats_impl, stats_options
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen import component, executor
from tfx.components.util import examples_utils, tfxio_utils
from tfx.dsl.components.base import executor_spec
from tfx.types import Artifact, artifact_utils, standard_component_specs
from tfx.utils import json_utils
from tfx_bsl.tfxio import dataset_options

BATCH_RECORDS = 1000  # records per batch: of 1,000, 4,096 and 10,000, the fastest on MNIST (docs/benchmarks.md)
_SETTINGS = (  # exec properties that, set to anything but their default, leave the work to TFX's executor
    standard_component_specs.STATS_OPTIONS_JSON_KEY,
    standard_component_specs.EXCLUDE_SPLITS_KEY,
    standard_component_specs.SHARDED_STATS_OUTPUT_KEY,
    standard_component_specs.SAMPLE_RATE_BY_SPLIT_KEY,
)


def statistics(record_batches: Iterable[pa.RecordBatch]) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV's default statistics of every record in ``record_batches``: its generators' accumulators,
    fed batch by batch, as its Beam combiner feeds them (``stats_impl.generate_statistics_in_memory``
    for many batches)."""
    options = stats_options.StatsOptions()
    generators = stats_impl.get_generators(options, in_memory=True)
    accumulators = [generator.create_accumulator() for generator in generators]
    for batch in record_batches:
        accumulators = [g.add_input(a, batch) for g, a in zip(generators, accumulators)]
    return stats_impl.extract_statistics_output(accumulators, generators)


def _is_set(value: Any) -> bool:
    """An exec property given a value: a JSON string that is not empty (``[]``, ``{}``, ``null``), or a true flag."""
    return bool(json_utils.loads(value)) if isinstance(value, str) and value else bool(value)


def _defaults_only(input_dict: Dict[str, List[Artifact]], exec_properties: Dict[str, Any]) -> bool:
    """No schema input, no option set, splits as ExampleGen named them: what the in-process path does."""
    examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
    return (
        not input_dict.get(standard_component_specs.SCHEMA_KEY)
        and not examples.has_custom_property(examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME)
        and not any(_is_set(exec_properties.get(key)) for key in _SETTINGS)
    )


class Executor(executor.Executor):
    def Do(self, input_dict: Dict[str, List[Artifact]], output_dict: Dict[str, List[Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        if self._beam_pipeline_args or not _defaults_only(input_dict, exec_properties):
            super().Do(input_dict, output_dict, exec_properties)
            return
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
        output = artifact_utils.get_single_instance(output_dict[standard_component_specs.STATISTICS_KEY])
        splits = artifact_utils.decode_split_names(examples.split_names)
        # The properties TFX's executor sets (a local run has no dashboard to link to).
        output.split_names = artifact_utils.encode_split_names(splits)
        output.span = examples.span
        output.set_string_custom_property(executor.STATS_DASHBOARD_LINK, "")
        output.set_json_value_custom_property(
            executor.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME, json_utils.dumps({split: 1.0 for split in splits})
        )
        batches = dataset_options.RecordBatchesOptions(
            batch_size=BATCH_RECORDS, drop_final_batch=False, num_epochs=1, shuffle=False
        )
        for split in splits:
            source = tfxio_utils.get_split_tfxio([examples], split, telemetry_descriptors=["StatisticsGen"])
            split_dir = artifact_utils.get_split_uri([output], split)
            tf.io.gfile.makedirs(split_dir)
            with tf.io.gfile.GFile(os.path.join(split_dir, executor.DEFAULT_FILE_NAME), "wb") as f:
                f.write(statistics(source.RecordBatches(batches)).SerializeToString())


class StatisticsGen(component.StatisticsGen):
    """TFX's StatisticsGen with the executor above (same spec, inputs, outputs and node id)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
