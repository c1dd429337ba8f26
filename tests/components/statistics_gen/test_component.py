import numpy as np
import pytest
import tensorflow_data_validation as tfdv
from tfx.types import standard_artifacts, standard_component_specs
from tfx_bsl.coders import example_coder

from components.example_gen.records import serialize_examples
from components.statistics_gen.component import _defaults_only, statistics
from pipeline.pipeline import SCHEMA_FILE
from tests.idx_files import synthetic


def record_batches(images: np.ndarray, labels: np.ndarray, size: int):
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    records = list(serialize_examples(images, labels))
    return [decoder.DecodeBatch(records[start:start + size]) for start in range(0, len(records), size)]


def feature(stats, name: str):
    (found,) = [f for f in stats.datasets[0].features if f.path.step == [name]]
    return found


@pytest.mark.parametrize("batch", [1000, 7])
def test_every_record_is_counted_as_numpy_counts_it(batch):
    images, labels = synthetic(2500)
    stats = statistics(record_batches(images, labels, batch))
    assert stats.datasets[0].num_examples == 2500
    pixels, label = feature(stats, "image"), feature(stats, "label")
    assert pixels.num_stats.common_stats.num_non_missing == 2500
    assert (pixels.num_stats.common_stats.min_num_values, pixels.num_stats.common_stats.max_num_values) == (784, 784)
    assert pixels.num_stats.num_zeros == int((images == 0).sum())
    assert (pixels.num_stats.min, pixels.num_stats.max) == (images.min(), images.max())
    assert pixels.num_stats.mean == pytest.approx(images.mean(), rel=1e-12)
    assert label.num_stats.mean == pytest.approx(labels.mean(), rel=1e-12)
    assert label.num_stats.std_dev == pytest.approx(labels.std(), rel=1e-9)


def test_a_bad_label_in_the_last_record_is_an_anomaly_against_the_schema():
    images, labels = synthetic(2500)
    labels[-1] = 99
    stats = statistics(record_batches(images, labels, 1000))
    assert feature(stats, "label").num_stats.max == 99
    anomalies = tfdv.validate_statistics(stats, tfdv.load_schema_text(SCHEMA_FILE))
    assert set(anomalies.anomaly_info) == {"label"}


def test_any_setting_besides_the_defaults_leaves_the_work_to_tfx():
    examples = standard_artifacts.Examples()
    inputs = {standard_component_specs.EXAMPLES_KEY: [examples]}
    # What the component sets when none are given.
    defaults = {standard_component_specs.EXCLUDE_SPLITS_KEY: "[]", standard_component_specs.SHARDED_STATS_OUTPUT_KEY: False}
    assert _defaults_only(inputs, defaults)
    for key, value in (
        (standard_component_specs.EXCLUDE_SPLITS_KEY, '["eval"]'),
        (standard_component_specs.STATS_OPTIONS_JSON_KEY, '{"sample_rate": 0.5}'),
        (standard_component_specs.SHARDED_STATS_OUTPUT_KEY, True),
        (standard_component_specs.SAMPLE_RATE_BY_SPLIT_KEY, '{"train": 0.5}'),
    ):
        assert not _defaults_only(inputs, {**defaults, key: value}), key
    assert not _defaults_only({**inputs, standard_component_specs.SCHEMA_KEY: [standard_artifacts.Schema()]}, defaults)
