"""What a user sees first in TensorBoard: the Clipping dashboard and the HParams table.

The Trainer writes both into its ``train`` run: the Custom Scalars layout and
its settings as an HParams session when training starts, so a run in progress
already has its charts, and its end-of-run numbers as ``final/*`` scalars when
it ends (the HParams plugin shows the last value of a tag, so per-step series
would show only their last step). ``pipeline.tools.tensorboard`` writes the
experiment: the columns, and the values each setting took.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Dict, Mapping, Sequence

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import api_pb2 as hparams_api_pb2, metadata as hparams_metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp  # not .api: that imports TensorFlow into a CLI's start

from components.trainer import tags
from components.trainer.options import STRATEGIES, ClipOptions, TelemetryOptions, unread_clip_settings

if TYPE_CHECKING:
    from components.trainer.report import GradientReport

CLIPPING, UPDATES, PER_VARIABLE, TRAINING = "Clipping", "Updates", "Per variable", "Training"
CLIPPING_DETAIL = "Clipping: the threshold, how often, and the guards"
# TensorBoard colours Custom Scalars by run, so two lines of one run share a colour: the norm is a line and
# what clipping removed a band below it (a margin chart), and the threshold a chart of its own. The band is
# the one chart of the first category: TensorBoard 2.16 does not keep a margin chart's place among others.
NORMS_CHART = "global gradient norm: pre-clip (line) and what clipping removed (the band, down to the post-clip norm)"
THRESHOLD_CHART = "clip threshold in force (a norm above it is clipped)"

# The settings recorded per run, by their ``--set`` names (``pipeline.tools.tensorboard``
# reads the same names from ML Metadata).
HPARAMS = (
    "clip.strategy", "clip.threshold", "clip.lo", "clip.hi", "clip.percentile", "clip.window", "clip.ratio", "clip.eps",
    "trainer.optimizer", "trainer.learning_rate", "trainer.lr_schedule", "trainer.loss", "trainer.init",
    "clip.alpha", "clip.z_threshold", "clip.warmup_steps", "clip.first_step_scale", "clip.skip_spikes",
    "trainer.hidden_units", "transform.mode", "transform.divisor", "trainer.batch_size", "trainer.epochs",
    "trainer.seed", "trainer.on_divergence",
)
# End-of-run metric (tag under tags.FINAL) -> column title, in the table's column order: what
# decides between runs first.
METRICS = {
    "eval_accuracy": "eval accuracy",
    "diverged": "diverged (1 = yes)",
    "clipped_fraction": "fraction of steps clipped",
    "max_pre_clip_norm": "max pre-clip norm",
    "p99_pre_clip_norm": "p99 pre-clip norm",
    "nonfinite_steps": "non-finite steps",
    "skipped_spikes": "spike steps skipped",
    "rollbacks": "rollbacks",
    "final_loss": "final loss",
}


def _whole_tag(tag: str) -> str:
    """The plugin matches a chart's regexes from the start of a tag (``re.match``); ``$`` makes it the whole tag."""
    return re.escape(tag) + "$"


def _chart(title: str, *chart_tags: str) -> layout_pb2.Chart:
    return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=map(_whole_tag, chart_tags)))


def _band(title: str, value: str, lower: str, upper: str) -> layout_pb2.Chart:
    """A line and a band around it; TensorBoard looks the three up by tag name, not regex."""
    series = layout_pb2.MarginChartContent.Series(value=value, lower=lower, upper=upper)
    return layout_pb2.Chart(title=title, margin=layout_pb2.MarginChartContent(series=[series]))


def clipping_layout(variable_names: Sequence[str], telemetry: TelemetryOptions, clip: ClipOptions) -> layout_pb2.Layout:
    """Clipping (the norm), its threshold, how often it clipped and the guards, then the optimizer's
    updates (where ``telemetry.update_every_n_steps``) and the gradient noise scale (where ``telemetry.noise_scale``),
    then each variable's pre- and post-clip norms, then training curves.

    Every run writes the same titles, so TensorBoard merges the runs' layouts
    into one set of charts with a line per run. What an adaptive strategy or
    guard measures (ZClip's statistics, the spike guard's z-scores) has charts
    in the runs that use it."""
    norms = [_band(NORMS_CHART, tags.PRE_CLIP, tags.POST_CLIP, tags.PRE_CLIP)]  # every run writes both: no missing tags
    clipping = [
        *([_chart(THRESHOLD_CHART, tags.THRESHOLD)] if STRATEGIES[clip.strategy].has_threshold else []),
        _chart(f"how often clipping fires: fraction of steps so far, and of the last {telemetry.clip_rate_window}",
               tags.CLIPPED_FRACTION, tags.CLIPPED_RECENT),
        _chart("clip scale factor (post-clip / pre-clip norm; 1 = untouched)", tags.SCALE),
    ]
    if clip.strategy == "zclip":
        clipping += [
            _chart(f"ZClip: z-score of the pre-clip norm (clipped above {clip.z_threshold:g})", tags.STRATEGY + "zclip_z"),
            _chart("ZClip: EMA mean and standard deviation of the norm", tags.STRATEGY + "zclip_mean",
                   tags.STRATEGY + "zclip_std"),
        ]
    if clip.skip_spikes:
        clipping.append(_chart(f"spike guard: z-scores of loss and pre-clip norm (skipped above {clip.spike_sigmas:g})",
                               tags.STRATEGY + "spike_loss_z", tags.STRATEGY + "spike_norm_z"))
    clipping.append(_chart("steps skipped so far (spikes, non-finite: no update) and rollbacks", tags.SKIPPED_SPIKES,
                           tags.NONFINITE, tags.ROLLBACKS))
    per_variable = [
        _chart(f"{name}: gradient norm pre- and post-clip", tags.variable_norm(name, tags.PRE),
               tags.variable_norm(name, tags.POST))
        for name in variable_names
    ]
    every = telemetry.update_every_n_steps
    updates = [] if not every else [
        _chart("update norm: ||weights after - before|| over all variables (what the optimizer did, not the gradient)"
               + (f", every {every} steps" if every > 1 else ""), tags.UPDATE_NORM),
        _chart("update-to-weight ratio over all variables: ||update|| / ||weights||", tags.UPDATE_RATIO),
        *(_chart(f"{name}: update norm and update-to-weight ratio", tags.variable_update(name, "norm"),
                 tags.variable_update(name, "ratio")) for name in variable_names),
    ]
    if telemetry.noise_scale:
        updates.append(_chart("gradient noise scale B_simple (EMA) and the batch size: larger batches pay off "
                              "below it", tags.NOISE_SCALE, tags.BATCH_SIZE))
    training = [
        _chart("loss (train per step, eval per epoch)", tags.LOSS),
        _chart("eval accuracy", tags.ACCURACY),
        _chart("learning rate", tags.LEARNING_RATE),
    ]
    categories = [(CLIPPING, norms), (CLIPPING_DETAIL, clipping), (UPDATES, updates), (PER_VARIABLE, per_variable),
                  (TRAINING, training)]
    return layout_pb2.Layout(category=[layout_pb2.Category(title=t, chart=charts) for t, charts in categories if charts])


def hparam_values(settings: Mapping[str, object]) -> Dict[str, object]:
    """One run's HParams from its flattened settings; a list (hidden units) as ``512-256``.

    Clip settings its strategy does not read are left out (a blank cell), so
    a ``none`` run shows no threshold and the columns a table opens with are
    ones that mean something."""
    unused = unread_clip_settings(str(settings.get("clip.strategy")))
    return {
        key: "-".join(map(str, settings[key])) if isinstance(settings[key], (list, tuple)) else settings[key]
        for key in HPARAMS if key in settings and key not in unused
    }


def final_metrics(report: GradientReport) -> Dict[str, float]:
    """The end-of-run values by tag; non-finite ones left out (TensorBoard would draw a NaN as a value)."""
    values = {
        "eval_accuracy": report.eval_accuracy,
        "diverged": float(report.diverged_at_step is not None),
        "clipped_fraction": report.clipped_fraction,
        "max_pre_clip_norm": report.max_pre_clip_norm,
        "p99_pre_clip_norm": report.p99_pre_clip_norm,
        "nonfinite_steps": report.nonfinite_steps,
        "skipped_spikes": report.skipped_spikes,
        "rollbacks": len(report.rollbacks),
        "final_loss": report.final_loss,
    }
    return {tags.FINAL + name: float(v) for name, v in values.items() if math.isfinite(v)}


def experiment_summary(runs: Sequence[Mapping[str, object]]) -> summary_pb2.Summary:
    """The HParams experiment over runs (their ``hparam_values``): a column per
    setting any run has, with the values the runs took, and a column per metric.

    Settings that differ between runs are marked so; TensorBoard lists them
    first and shows the first few columns by default."""
    columns = []
    for key in HPARAMS:
        values = sorted({run[key] for run in runs if key in run}, key=str)
        if values:
            column = hparams_api_pb2.HParamInfo(name=key, differs=len(values) > 1)
            hp.Discrete(values).update_hparam_info(column)
            columns.append(column)
    metrics = [hp.Metric(tags.FINAL + name, display_name=title).as_proto() for name, title in METRICS.items()]
    experiment = hparams_api_pb2.Experiment(hparam_infos=columns, metric_infos=metrics)
    plugin_data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=hparams_metadata.EXPERIMENT_TAG, tensor=hparams_metadata.NULL_TENSOR,
        metadata=hparams_metadata.create_summary_metadata(plugin_data),
    )])
