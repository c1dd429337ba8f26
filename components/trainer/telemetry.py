"""In-graph TensorBoard telemetry of what clipping did, step by step.

Everything written here is already computed by the step (loss) or by the clip
strategy (norms, scale): telemetry only writes. Summaries are ops inside the
training ``tf.function``, so telemetry adds no host round trip. Skipped (non-finite)
steps write no norms or histograms (a single NaN makes TensorBoard draw the
whole series wrongly); they are counted in ``nonfinite/steps`` instead.
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

import math
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.util import event_pb2
from tensorboard.plugins.custom_scalar import layout_pb2, summary as custom_scalar_summary
from tensorboard.plugins.hparams import api_pb2 as hparams_api_pb2, summary as hparams_summary, summary_v2 as hp
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata

from components.trainer import tags
from components.trainer.clipping import ClipStats
from components.trainer.options import TelemetryOptions

HISTOGRAM_BUCKETS = 30
_EDGE_FRACTIONS = np.linspace(0.0, 1.0, HISTOGRAM_BUCKETS + 1)  # float64


def histogram_buckets(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Each tensor's TensorBoard histogram, [len(tensors), buckets, 3] float64 (left edge, right edge,
    count), bucketed by ``tf.histogram_fixed_width``.

    The format of ``tf.summary.histogram`` but O(n): TensorBoard's own op builds a float64 one-hot
    matrix of n x 30 (for the 400k-weight first layer, ~100 MB per histogram). Only what needs a pass
    over a tensor is done per tensor (its min, max and counts); the ranges and edges of all are one
    set of ops, so the step's histograms are quick to trace (docs/benchmarks.md).
    """
    flat = [tf.reshape(t, [-1]) for t in tensors]
    low, high = tf.stack([tf.reduce_min(v) for v in flat]), tf.stack([tf.reduce_max(v) for v in flat])
    high = tf.where(high > low, high, low + 1.0)  # all values equal: one bucket holds them
    ranges = tf.stack([low, high], axis=1)
    counts = tf.stack([tf.histogram_fixed_width(v, ranges[i], nbins=HISTOGRAM_BUCKETS) for i, v in enumerate(flat)])
    low, high = tf.cast(low, tf.float64)[:, None], tf.cast(high, tf.float64)[:, None]
    edges = low + (high - low) * _EDGE_FRACTIONS  # [tensors, buckets + 1]
    return tf.stack([edges[:, :-1], edges[:, 1:], tf.cast(counts, tf.float64)], axis=2)


def write_scalar(name: str, value: tf.Tensor, step: tf.Tensor) -> None:
    """``tf.summary.scalar`` without its name scoping: inside a ``tf.function``
    branch that would prefix the tag with ``cond_1/``; ``tf.summary.write``
    keeps the tag exactly as given."""
    tf.summary.write(name, tf.cast(value, tf.float32), step=step, metadata=_SCALAR_METADATA)


_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_SCALAR_METADATA_BYTES = _SCALAR_METADATA.SerializeToString()
_HISTOGRAM_METADATA_BYTES = histogram_metadata.create_summary_metadata(display_name=None, description=None).SerializeToString()
_DT_FLOAT, _DT_DOUBLE = 1, 2  # tensorflow.DataType


class StepScalars:
    """One training step's scalars, written as one event of many values.

    A summary op per scalar (some 40 a step with full telemetry, and their branches) made the
    step's graph slow to trace, once per Trainer (docs/benchmarks.md, "The test suite"): here
    three ``encode_proto`` ops build the ``Summary`` a scalar op per tag would have written,
    value for value (a float ``TensorProto`` with the scalars plugin's metadata), and one op
    writes it. A value is left out where ``shown`` is false (a skipped step's norms, a
    threshold not yet known): a mask, not a branch per value. Per-variable values come as
    vectors (``add_vector``), not a slice per variable."""

    def __init__(self):
        self.scalar_tags, self.scalars, self.scalars_shown = [], [], []
        self.vector_tags, self.vectors, self.vectors_shown = [], [], []

    def add(self, tag: str, value, shown=True) -> None:
        self.scalar_tags.append(tag)
        self.scalars.append(tf.cast(value, tf.float32))
        self.scalars_shown.append(tf.convert_to_tensor(shown, tf.bool))

    def add_vector(self, tags: Sequence[str], values: tf.Tensor, shown=True) -> None:
        """One scalar per tag, in order, from the vector ``values``."""
        self.vector_tags += list(tags)
        self.vectors.append(tf.cast(values, tf.float32))
        self.vectors_shown.append(tf.fill([len(tags)], tf.convert_to_tensor(shown, tf.bool)))

    def write(self, step: tf.Tensor) -> None:
        """Into the default summary writer (call under ``writer.as_default()``)."""
        tags = self.scalar_tags + self.vector_tags
        if tags:
            floats = tf.reshape(_joined(self.scalars, self.vectors), [len(tags), 1])
            write_summary(tags, _SCALAR_METADATA_BYTES, _tensor_protos(_DT_FLOAT, (), "float_val", floats), step,
                          kept=_joined(self.scalars_shown, self.vectors_shown))


def write_histograms(tags: Sequence[str], tensors: Sequence[tf.Tensor], step: tf.Tensor) -> None:
    """A histogram (``histogram_buckets``) of each tensor under its tag, all in one event."""
    buckets = tf.reshape(histogram_buckets(tensors), [len(tags), HISTOGRAM_BUCKETS * 3])
    write_summary(tags, _HISTOGRAM_METADATA_BYTES,
                  _tensor_protos(_DT_DOUBLE, (HISTOGRAM_BUCKETS, 3), "double_val", buckets), step)


def _tensor_protos(dtype: int, shape: Sequence[int], field: str, values: tf.Tensor) -> tf.Tensor:
    """Serialized ``TensorProto``s of ``dtype`` and ``shape``, one per row of ``values`` (the row in ``field``:
    ``float_val``, ``double_val``); a scalar's shape is ``()``, which the proto leaves out."""
    count, size = values.shape
    ones = np.ones([count, 1], np.int32)
    fields, sizes, columns = ["dtype", field], [ones, ones * size], [ones * dtype, values]
    if shape:
        dims = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in shape])
        fields, sizes = fields + ["tensor_shape"], sizes + [ones]
        columns = columns + [np.full([count, 1], dims.SerializeToString(), object)]
    return tf.io.encode_proto(sizes=np.concatenate(sizes, 1), values=columns, field_names=fields,
                              message_type="tensorflow.TensorProto")


def write_summary(tags: Sequence[str], metadata: bytes, tensors: tf.Tensor, step: tf.Tensor,
                  kept: Optional[tf.Tensor] = None) -> None:
    """One event of a value per tag: each its serialized ``TensorProto`` (``tensors``) with the plugin's
    ``metadata``; where ``kept`` (a bool per tag) is false, the value is left out. The ``Summary`` the
    summary ops would have written, value for value, built by ``encode_proto`` and written by one op."""
    count = len(tags)
    ones = np.ones([count, 1], np.int32)
    values = tf.io.encode_proto(
        sizes=np.concatenate([ones, ones, ones], 1),
        values=[np.array(tags, object).reshape(count, 1), np.full([count, 1], metadata, object),
                tf.reshape(tensors, [count, 1])],
        field_names=["tag", "metadata", "tensor"], message_type="tensorflow.Summary.Value")
    if kept is not None:
        values = tf.boolean_mask(values, kept)
    summary = tf.io.encode_proto(sizes=tf.reshape(tf.size(values), [1, 1]), values=[tf.reshape(values, [1, -1])],
                                 field_names=["value"], message_type="tensorflow.Summary")
    tf.summary.experimental.write_raw_pb(summary[0], step=step)


def update_values(update_norms: tf.Tensor, weight_norms: tf.Tensor) -> tf.Tensor:
    """What ``Telemetry.record_updates`` writes, from each variable's update norm and weight norm: the update's
    norm and update-to-weight ratio over all variables, then each variable's norm, then each one's ratio.
    Computed where the update is measured, not every step."""
    total = tf.norm(update_norms)
    ratios = update_norms / tf.maximum(weight_norms, 1e-12)  # zero-initialised biases: no ratio blow-up
    return tf.concat([[total, total / tf.maximum(tf.norm(weight_norms), 1e-12)], update_norms, ratios], 0)


def _joined(scalars: List[tf.Tensor], vectors: List[tf.Tensor]) -> tf.Tensor:
    """The scalars, then the vectors' values, as one vector: the order ``StepScalars.write`` lists their tags in."""
    return tf.concat(([tf.stack(scalars)] if scalars else []) + vectors, 0)


def _describes_run(event: event_pb2.Event) -> bool:
    return any(value.metadata.plugin_data.plugin_name in tags.RUN_RECORD_PLUGINS for value in event.summary.value)


def _nothing() -> None:
    """The empty branch of a ``tf.cond`` whose other branch only writes summaries."""


class Telemetry:
    """Writes from inside the training ``tf.function``, which is traced without
    autograph: its branches are explicit ``tf.cond``s (converting these
    methods' code was a large part of every Trainer run's tracing, docs/benchmarks.md)."""

    def __init__(self, logdir: str, variable_names: Sequence[str], options: TelemetryOptions):
        self.logdir = logdir
        self.writer = tf.summary.create_file_writer(f"{logdir}/{tags.TRAIN_RUN}")
        self.eval_writer = tf.summary.create_file_writer(f"{logdir}/{tags.EVAL_RUN}")
        self.names = list(variable_names)
        self.options = options

    def record_start(self, layout: layout_pb2.Layout, hparams: Mapping[str, object], name: str = "Trainer") -> None:
        """The dashboards' layout and this run's settings, before the first step.

        The HParams trial is a sweep point's name (``name`` is the component id, ``Trainer.global_norm-1-seed0``),
        and a lone Trainer's log folder (under TFX its execution id: ``trainer-7``), so every run is a row of
        its own even when two share their settings. (A point trained again in the same output dir, after an
        edit, shares its point's row: TensorBoard groups sessions of one trial.)"""
        point = name.split(".", 1)[1] if "." in name else None
        trial = point or "trainer-" + os.path.basename(os.path.normpath(self.logdir))
        with self.writer.as_default():
            tf.summary.experimental.write_raw_pb(custom_scalar_summary.pb(layout).SerializeToString(), step=0)
            hp.hparams(dict(hparams), trial_id=trial)

    def record_step(
        self,
        scalars: StepScalars,
        step: tf.Tensor,
        loss: tf.Tensor,
        learning_rate: tf.Tensor,
        stats: ClipStats,
        clipped_steps: tf.Tensor,
        nonfinite_steps: tf.Tensor,
        skipped_spikes: tf.Tensor,
        recent_clipped: tf.Tensor,
    ) -> None:
        """Per-step scalars (call inside the training tf.function). The clipped
        fractions count applied steps only (skipped ones were not clipped):
        so far, and over ``recent_clipped``, the clipped flags (1/0) of the last
        applied steps, a ring the loop keeps of ``clip_rate_window`` slots. A step
        a spike guard skipped is drawn (its norm and loss are what a user looks
        for); a non-finite one is only counted."""
        if not self.options.scalars:
            return
        applied_steps = tf.maximum(step + 1 - nonfinite_steps - skipped_spikes, 1)
        clipped_fraction = tf.cast(clipped_steps, tf.float32) / tf.cast(applied_steps, tf.float32)
        window = tf.minimum(applied_steps, tf.size(recent_clipped, out_type=tf.int64))
        recent_fraction = tf.reduce_sum(recent_clipped) / tf.cast(window, tf.float32)
        scalars.add(tags.NONFINITE, nonfinite_steps)
        scalars.add(tags.SKIPPED_SPIKES, skipped_spikes)
        scalars.add(tags.LEARNING_RATE, learning_rate)
        finite = tf.logical_and(tf.math.is_finite(stats.pre_global), tf.math.is_finite(loss))
        scalars.add(tags.LOSS, loss, finite)
        scalars.add(tags.PRE_CLIP, stats.pre_global, finite)
        scalars.add(tags.POST_CLIP, stats.post_global, finite)
        scalars.add(tags.SCALE, stats.scale, finite)
        scalars.add(tags.CLIPPED, tf.cast(stats.scale < 1.0, tf.float32), finite)
        scalars.add(tags.CLIPPED_FRACTION, clipped_fraction, finite)
        scalars.add(tags.CLIPPED_RECENT, recent_fraction, finite)
        self._add_threshold(scalars, stats.threshold, finite)
        for name, value in stats.extra.items():
            scalars.add(tags.STRATEGY + name, value, finite)
        scalars.add_vector([tags.variable_norm(name, tags.PRE) for name in self.names], stats.pre_norms, finite)
        scalars.add_vector([tags.variable_norm(name, tags.POST) for name in self.names], stats.post_norms, finite)

    def record_updates(self, scalars: StepScalars, values: tf.Tensor, measured: tf.Tensor) -> None:
        """The update the optimizer applied (``update_values``), at a step that ``measured`` it: an applied step,
        every ``telemetry.update_every_n_steps``. (A skipped step applied none: not drawn.)"""
        if not self.options.scalars:
            return
        scalars.add_vector([tags.UPDATE_NORM, tags.UPDATE_RATIO, *(tags.variable_update(name, "norm") for name in self.names),
                            *(tags.variable_update(name, "ratio") for name in self.names)], values, measured)

    def record_noise_scale(self, scalars: StepScalars, noise_scale: tf.Tensor, batch_size: tf.Tensor) -> None:
        """The gradient noise scale so far (once it is known) and, to compare, the batch size."""
        if not self.options.scalars:
            return
        scalars.add(tags.BATCH_SIZE, batch_size)
        scalars.add(tags.NOISE_SCALE, noise_scale, tf.math.is_finite(noise_scale))

    @staticmethod
    def _add_threshold(scalars: StepScalars, threshold: tf.Tensor, finite: tf.Tensor) -> None:
        """The clip threshold, where one applies: decided while tracing when the
        strategy's threshold is a constant, else per step."""
        constant = tf.get_static_value(threshold)
        if constant is None:
            scalars.add(tags.THRESHOLD, threshold, tf.logical_and(finite, tf.math.is_finite(threshold)))
        elif math.isfinite(float(constant)):
            scalars.add(tags.THRESHOLD, threshold, finite)

    def writing_steps(self):
        """The context the training function's steps write in: the train writer, flushed once, when the
        context exits. (``as_default`` flushes on exit: entered per step, it put a flush in every step.)"""
        return self.writer.as_default()

    def write_step(self, scalars: StepScalars, step: tf.Tensor) -> None:
        """Writes the step's scalars (inside ``writing_steps``)."""
        scalars.write(step)

    def record_histograms(
        self,
        step: tf.Tensor,
        grads: Sequence[tf.Tensor],
        clipped: Sequence[tf.Tensor],
        variables: Sequence[tf.Variable],
        when: tf.Tensor,
    ) -> None:
        """Gradient (pre and post clip) and weight histograms, written if ``when``
        (the loop passes: due, and the step finite), inside ``writing_steps``.

        The loop calls this only at steps that may be due (see
        ``steps_until_histograms``), so the per-step graph holds no histogram
        branch at all.
        """

        def histograms() -> None:
            names, tensors = [], []
            for name, grad, post, var in zip(self.names, grads, clipped, variables):
                names += [tags.gradient_histogram(name, tags.PRE), tags.gradient_histogram(name, tags.POST),
                          tags.weights_histogram(name)]
                tensors += [grad, post, var]
            write_histograms(names, tensors, step)

        tf.cond(when, histograms, _nothing)

    def steps_until_histograms(self, step: int) -> Optional[int]:
        """0 when ``step`` is due for histograms, else steps until the next; None: never."""
        every = self.options.histogram_every_n_steps
        return (-step) % every if every else None

    def record_eval(self, step: int, metrics: dict) -> None:
        """Eval metrics as their own TensorBoard run, next to ``train``."""
        with self.eval_writer.as_default():
            for name, value in metrics.items():
                write_scalar(name, value, step)

    def record_rollback(self, step: int, count: int) -> None:
        """A rollback on divergence (components/trainer/rollback.py), from the host: the count so far."""
        with self.writer.as_default():
            write_scalar(tags.ROLLBACKS, count, step)
        self.writer.flush()

    def record_end(self, step: int, final: Mapping[str, float], diverged: bool) -> None:
        """End-of-run values (``final/*``), what the HParams table shows for this run, and its
        status there: success, or failure where training diverged."""
        status = hparams_api_pb2.STATUS_FAILURE if diverged else hparams_api_pb2.STATUS_SUCCESS
        with self.writer.as_default():
            for tag, value in final.items():
                write_scalar(tag, value, step)
            tf.summary.experimental.write_raw_pb(hparams_summary.session_end_pb(status).SerializeToString(), step=step)

    def import_previous(self, previous_logdir: str, before_step: int) -> None:
        """Copies an interrupted run's events for steps before ``before_step``.

        A resumed Trainer writes into a new ModelRun; its history up to the
        checkpoint comes along, while steps after the checkpoint (redone
        now) are left out so no series has two values for one step, and so
        are the old run's layout and HParams (this run wrote its own).
        """
        for run in (tags.TRAIN_RUN, tags.EVAL_RUN):
            source = os.path.join(previous_logdir, run)
            files = sorted(tf.io.gfile.glob(os.path.join(source, "*tfevents*")))
            # "0" sorts before the writers' timestamps: TensorBoard reads this file first.
            target = os.path.join(self.logdir, run, "events.out.tfevents.0.resumed")
            with tf.io.TFRecordWriter(target) as out:
                for record in tf.data.TFRecordDataset(files):
                    event = event_pb2.Event.FromString(record.numpy())
                    if not event.HasField("summary") or (event.step < before_step and not _describes_run(event)):
                        out.write(record.numpy())

    def flush(self) -> None:
        self.writer.flush()
        self.eval_writer.flush()
