"""summary.json: what a run produced and where to look, from ML Metadata."""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import shlex
import sys
from typing import Any, Dict, List, Optional

import tensorflow_model_analysis as tfma

from components.evaluator.eval_config import ACCURACY_METRIC
from components.trainer.report import GradientReport
from components.validation.health import PROBLEMS_PROPERTY
from components.trainer.options import reads_threshold
from pipeline import metadata, outputs, sweep, verdict
from pipeline.config import PipelineConfig
from pipeline.paths import RunPaths


def overall_accuracy(evaluation_uri: str) -> Optional[float]:
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if not slice_metrics.slice_key.single_slice_keys:
            for entry in slice_metrics.metric_keys_and_values:
                if entry.key.name == ACCURACY_METRIC:
                    return entry.value.double_value.value
    return None


def _first(execution: Optional[metadata.NodeExecution], key: str):
    artifacts = execution.outputs.get(key, []) if execution else []
    return artifacts[0] if artifacts else None


GONE = "(gone: see below)"


def there(path: Optional[str], missing: List[str]) -> Optional[str]:
    """``path`` if it is there; else None, and the path noted in ``missing``: a summary never names a path
    that is not there."""
    if path and not outputs.is_there(path):
        missing.append(path)
        return None
    return path


def training_result(store, by_node: Dict[str, metadata.NodeExecution], trainer_id: str, evaluator_id: str,
                    missing: List[str]) -> Dict[str, Any]:
    """What one Trainer and its Evaluator produced in this run: accuracy, model, logs, gradient report, time."""
    trainer = by_node.get(trainer_id)
    model, model_run = _first(trainer, "model"), _first(trainer, "model_run")
    evaluation = _first(by_node.get(evaluator_id), "evaluation")
    logdir = there(model_run.uri if model_run else None, missing)
    return {
        "eval_accuracy": overall_accuracy(evaluation.uri) if evaluation else None,
        "model": there(model.uri if model else None, missing),
        "tensorboard_logdir": logdir,
        "gradient_report": GradientReport.read(logdir).__dict__ if logdir else None,
        "trainer_state": trainer.state if trainer else None,
        "trainer_seconds": _training_seconds(store, trainer, model_run),
    }


def _training_seconds(store, trainer: Optional[metadata.NodeExecution], model_run) -> Optional[float]:
    """The Trainer's wall time; for a cached one, that of the execution that trained the model it reuses."""
    if trainer is None or model_run is None:
        return None
    if trainer.state == "CACHED":
        trainer = next((e for e in metadata.node_executions(store, trainer.node) if e.state == "COMPLETE"
                        and any(a.id == model_run.id for a in e.outputs.get("model_run", []))), None)
    return round(trainer.wall_seconds, 3) if trainer else None


def point_results(store, by_node: Dict[str, metadata.NodeExecution], config: PipelineConfig,
                  missing: List[str]) -> list:
    """A sweep's points, each with its settings (the ones the grid sets) and its training result."""
    results = []
    for point in sweep.points(config):
        clip = point.config.clip
        results.append({
            "point": point.name,
            "setting": point.setting,
            "seed": point.config.trainer.seed,
            "strategy": clip.strategy,
            "threshold": clip.threshold if reads_threshold(clip.strategy) else None,
            "learning_rate": point.config.trainer.learning_rate,
            "divisor": point.config.transform.divisor,
            **training_result(store, by_node, point.trainer_id, point.evaluator_id, missing),
        })
    return results


def collect_summary(config: PipelineConfig) -> Dict[str, Any]:
    paths = RunPaths.of(config.pipeline)
    store = metadata.open_store(paths.metadata_db)
    run_id = metadata.latest_run_id(store)
    executions = metadata.run_executions(store, run_id)
    by_node = {e.node: e for e in executions}
    summary: Dict[str, Any] = {"pipeline_run": run_id}
    missing: List[str] = []
    if config.sweep.active:
        points = point_results(store, by_node, config, missing)
        settings = verdict.settings_of(points)
        decided = verdict.decide(settings)
        summary.update(points=points, settings=[s.to_dict() for s in settings], best=decided.best,
                       verdict={**dataclasses.asdict(decided), "sentence": decided.sentence()})
    else:
        evaluator_blessing = _first(by_node.get("Evaluator"), "blessing")
        blessing = _first(by_node.get("TrainingHealthGate"), "final_blessing")
        pushed = _first(by_node.get("Pusher"), "pushed_model")
        summary.update(training_result(store, by_node, "Trainer", "Evaluator", missing))
        summary.update({
            "accuracy_threshold": config.evaluator.accuracy_threshold,
            "blessed": bool(blessing and metadata.custom_int(blessing, "blessed") == 1),
            "accuracy_blessed": bool(evaluator_blessing and metadata.custom_int(evaluator_blessing, "blessed") == 1),
            "health_problems": (metadata.custom_str(blessing, PROBLEMS_PROPERTY) or None) if blessing else None,
            "serving_model": there(outputs.reported_path(outputs.PUSHED_MODEL, pushed) if pushed else None, missing),
        })
        logdir = summary["tensorboard_logdir"]
        summary["tensorboard_command"] = (
            f"{shlex.quote(sys.executable)} -m tensorboard.main --logdir {shlex.quote(logdir)} --host 127.0.0.1"
            if logdir else None
        )
    summary.update({
        "missing": missing,
        "metadata_db": paths.metadata_db,
        "summary_file": paths.summary,
        "components": {e.node: {"state": e.state, "wall_seconds": round(e.wall_seconds, 3)} for e in executions},
        "dashboards_command": (
            f"{shlex.quote(sys.executable)} -m pipeline.tools.tensorboard --output-dir {shlex.quote(paths.local_dir)}"
        ),
        "config": config.to_dict(),
    })
    return summary


def write_summary(config: PipelineConfig) -> Dict[str, Any]:
    summary = collect_summary(config)
    path = RunPaths.of(config.pipeline).summary
    with open(path + ".tmp", "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(path + ".tmp", path)
    return summary


def describe(summary: Dict[str, Any]) -> str:
    """The human-readable end of a run."""
    components = summary["components"].values()
    states = collections.Counter(info["state"] for info in components)
    lines = [
        "",
        f"clipflow run {summary['pipeline_run']}: {len(components)} components "
        f"({', '.join(f'{n} {state}' for state, n in states.items())}), "
        f"{sum(info['wall_seconds'] for info in components):.2f} s in components",
    ]
    lines += _describe_points(summary) if "points" in summary else _describe_model(summary)
    if summary["missing"]:
        lines.append(f"gone: {', '.join(summary['missing'])} (removed as the run ended); the same command again "
                     "makes them anew")
    lines += [
        f"ML Metadata: {summary['metadata_db']}",
        f"summary: {summary['summary_file']}",
        "TensorBoard, every Trainer run of this output directory side by side (Clipping dashboard, HParams table):",
        f"  {summary['dashboards_command']}",
    ]
    if summary.get("tensorboard_command"):
        lines += ["or this run alone:", f"  {summary['tensorboard_command']}"]
    return "\n".join(lines)


def _describe_model(summary: Dict[str, Any]) -> list:
    accuracy = summary["eval_accuracy"]
    return [
        f"eval accuracy: {accuracy:.4f}" if accuracy is not None else "eval accuracy: (no evaluation)",
        f"blessed: {summary['blessed']} (accuracy threshold {summary['accuracy_threshold']}: "
        f"{'met' if summary['accuracy_blessed'] else 'not met'}"
        + (f"; unhealthy training: {summary['health_problems']})" if summary["health_problems"] else ")"),
        f"serving model: {summary['serving_model'] or ('(not pushed)' if not summary['blessed'] else GONE)}",
        f"model: {summary['model'] or GONE}",
        f"TensorBoard logs: {summary['tensorboard_logdir'] or GONE}",
    ]


def _describe_points(summary: Dict[str, Any]) -> list:
    lines = [f"sweep of {len(summary['points'])} points (eval accuracy, fraction of steps clipped):"]
    for point in summary["points"]:
        accuracy, report = point["eval_accuracy"], point["gradient_report"] or {}
        diverged = report.get("diverged_at_step")
        lines.append(
            f"  {point['point']}: " + (f"{accuracy:.4f}" if accuracy is not None else "(no evaluation)")
            + (f", {report['clipped_fraction']:.1%} clipped" if report else "")
            + (f", diverged at step {diverged}" if diverged is not None else "")
        )
    if any(len(setting["seeds"]) > 1 for setting in summary["settings"]):
        lines.append("over seeds (eval accuracy mean +- std, min-max; steps clipped, mean over seeds):")
        lines += [f"  {setting_line(setting)}" for setting in summary["settings"]]
        return [*lines, f"verdict: {summary['verdict']['sentence']}"]
    best = next((p for p in summary["points"] if p["point"] == summary["best"]), None)
    lines.append(f"best: {best['point']} (eval accuracy {best['eval_accuracy']:.4f}); model: {best['model'] or GONE}; "
                 "one seed, not tested against seed noise (--seeds 0,1,2,3 tests it)"
                 if best else "best: none (no point was evaluated)")
    return lines


def setting_line(setting: Dict[str, Any]) -> str:
    """``global_norm-1: 0.9595 +- 0.0012 (0.9581-0.9610) over 4 seeds, 0.8% clipped, diverged on 1 of 4 seeds``."""
    accuracy, seeds = setting["eval_accuracy"], len(setting["seeds"])
    clipped = [c for c in setting["clipped_fractions"] if c is not None]
    return (
        f"{setting['setting']}: "
        + (f"{accuracy['mean']:.4f} +- {accuracy['std'] or 0:.4f} ({accuracy['min']:.4f}-{accuracy['max']:.4f})"
           if accuracy["mean"] is not None else "(no evaluation)")
        + f" over {seeds} seeds"
        + (f", {sum(clipped) / len(clipped):.1%} clipped" if clipped else "")
        + (f", diverged on {setting['diverged_seeds']} of {seeds} seeds" if setting["diverged_seeds"] else "")
    )
