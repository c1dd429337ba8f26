"""The sweep's grid, its DAG (local and compiled), and the rule that names the best point."""
import json

import pytest

from components.common.errors import ConfigError
from pipeline import sweep
from pipeline.config import load_config
from pipeline.pipeline import create_pipeline
from tests.kfp_spec import task_custom_config

GRID = ['sweep.strategies=["none", "global_norm", "agc"]', "sweep.thresholds=[0.25, 1]"]


def _config(*settings):
    """The config as the CLI makes it (prepare.build_config): loaded, then its grid checked point by point."""
    config = load_config(None, ['data.data_dir="/data/mnist"', "pipeline.output_dir='/tmp/runs'", *settings])
    sweep.points(config)
    return config


def test_points_cross_the_threshold_strategies_with_the_thresholds_and_keep_the_others_single():
    points = sweep.points(_config(*GRID))
    assert [p.name for p in points] == ["none", "global_norm-0.25", "global_norm-1", "agc"]
    by_name = {p.name: p.config for p in points}
    assert by_name["global_norm-0.25"].clip.threshold == 0.25 and by_name["global_norm-1"].clip.threshold == 1.0
    assert {c.clip.strategy for c in by_name.values()} == {"none", "global_norm", "agc"}
    assert all(not c.sweep.active for c in by_name.values())  # a point is a plain config


def test_learning_rates_and_divisors_cross_every_point():
    points = sweep.points(_config('sweep.strategies=["global_norm"]', "sweep.thresholds=[0.5]",
                                  "sweep.learning_rates=[0.001, 0.01]", "sweep.divisors=[50, 255]"))
    assert [p.name for p in points] == ["global_norm-0.5-lr0.001-div50", "global_norm-0.5-lr0.001-div255",
                                        "global_norm-0.5-lr0.01-div50", "global_norm-0.5-lr0.01-div255"]
    assert [(p.config.trainer.learning_rate, p.config.transform.divisor) for p in points] == [
        (0.001, 50.0), (0.001, 255.0), (0.01, 50.0), (0.01, 255.0)]


@pytest.mark.parametrize("settings,message", [
    (['sweep.strategies=["global_norm"]', "sweep.thresholds=[0.5, 0]"], "sweep.thresholds must all be > 0"),
    (['sweep.strategies=["global_norm"]', "sweep.thresholds=[-1]"], "sweep.thresholds must all be > 0"),
    (['sweep.strategies=["global_norm", "sometimes"]'], "sweep.strategies: unknown strategy 'sometimes'; known: none,"),
    (['sweep.strategies=["adaptive"]'], "sweep.strategies: 'adaptive' is renamed: use 'percentile'"),
    (['sweep.strategies=["global_norm"]', "sweep.thresholds=[1, 1.0]"], "the sweep has the point global_norm-1 twice"),
    (['sweep.strategies=["none", "none"]'], "the sweep has the point none twice"),
    (["sweep.thresholds=[1]"], "sweep.thresholds needs sweep.strategies"),
    (['sweep.strategies=["none", "agc"]', "sweep.thresholds=[1]"], "none of sweep.strategies reads a threshold"),
    (['sweep.strategies=["none"]', "sweep.learning_rates=[0]"], "sweep.learning_rates must all be > 0"),
    (['sweep.strategies=["none"]', "sweep.divisors=[50]", "transform.mode=z_score"], "sweep.divisors need transform.mode"),
    (['sweep.strategies=["agc"]', "clip.ratio=0"], "clip.ratio must be > 0"),  # each point is a whole, valid config
])
def test_bad_grids_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError) as err:
        _config(*settings)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_dag_ingests_once_and_trains_and_evaluates_each_point():
    config = _config(*GRID)
    ids = [c.id for c in create_pipeline(config).components]
    for once in ("MnistExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "AnomalyGate", "Transform"):
        assert ids.count(once) == 1
    names = [p.name for p in sweep.points(config)]
    assert sorted(i for i in ids if i.startswith("Trainer")) == sorted(f"Trainer.{n}" for n in names)
    assert sorted(i for i in ids if i.startswith("Evaluator")) == sorted(f"Evaluator.{n}" for n in names)
    assert "Pusher" not in ids and "TrainingHealthGate" not in ids  # the report names the best; nothing is pushed


def test_each_trainer_carries_its_points_settings_and_a_transform_per_divisor():
    config = _config('sweep.strategies=["global_norm"]', "sweep.thresholds=[0.5, 2]", "sweep.divisors=[50, 255]")
    components = {c.id: c for c in create_pipeline(config).components}
    assert sorted(i for i in components if i.startswith("Transform")) == ["Transform.div255", "Transform.div50"]
    for point in sweep.points(config):
        trainer = components[point.trainer_id]
        custom = json.loads(trainer.exec_properties["custom_config"])
        assert custom["clip"] == json.loads(json.dumps(point.config.trainer_custom_config()["clip"]))
        transform = trainer.inputs["transform_graph"].producer_component_id
        assert transform == f"Transform.div{point.config.transform.divisor:g}"
        transform_config = json.loads(components[transform].exec_properties["custom_config"])
        assert transform_config["scaling"]["divisor"] == point.config.transform.divisor
        assert trainer.exec_properties["code_fingerprint"] == components["Trainer.global_norm-2-div50"].exec_properties[
            "code_fingerprint"]  # every point runs the Trainer's code


def test_the_kubeflow_v2_spec_of_a_sweep_compiles_with_a_task_per_point():
    from pipeline.runners import kubeflow_v2  # noqa: PLC0415  (the kfp extra; slow to import)

    config = load_config(None, ['data.data_dir="gs://b/mnist"', "pipeline.output_dir='gs://b/runs'",
                                "pipeline.runner='kubeflow-v2'", *GRID])
    spec = kubeflow_v2.compile_spec(config)
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(c.id for c in create_pipeline(_config(*GRID)).components)
    for point in sweep.points(config):
        trainer = tasks[point.trainer_id]
        assert "Transform" in trainer["dependentTasks"]
        assert point.trainer_id in tasks[point.evaluator_id]["dependentTasks"]
        custom = task_custom_config(spec, point.trainer_id)
        assert (custom["clip"]["strategy"], custom["clip"]["threshold"]) == (point.config.clip.strategy,
                                                                             point.config.clip.threshold)


def test_seeds_train_each_setting_once_per_seed_with_node_ids_that_name_the_seed():
    config = _config('sweep.strategies=["none", "global_norm"]', "sweep.thresholds=[0.5]", "sweep.seeds=[0, 3]")
    points = sweep.points(config)
    assert [(p.name, p.setting, p.config.trainer.seed) for p in points] == [
        ("none-seed0", "none", 0), ("none-seed3", "none", 3),
        ("global_norm-0.5-seed0", "global_norm-0.5", 0), ("global_norm-0.5-seed3", "global_norm-0.5", 3)]
    ids = [c.id for c in create_pipeline(config).components]
    assert sorted(i for i in ids if i.startswith("Trainer")) == sorted(f"Trainer.{p.name}" for p in points)
    assert [p.name for p in sweep.points(_config(*GRID))] == ["none", "global_norm-0.25", "global_norm-1", "agc"]
    # A threshold added anywhere in the list leaves every other node's id as it was: the cache answers those.
    wider = _config('sweep.strategies=["none", "global_norm"]', "sweep.thresholds=[0.1, 0.5]", "sweep.seeds=[0, 3]")
    assert set(ids) < {c.id for c in create_pipeline(wider).components}


@pytest.mark.parametrize("settings,message", [
    (["sweep.seeds=[0, 1, 0]"], "sweep.seeds has 0 twice; list each seed once"),
    (["sweep.seeds=[0, -1]"], "sweep.seeds must all be >= 0 (got -1)"),
    (["sweep.seeds=[0, 1.5]"], "sweep.seeds[1] must be a whole number, got 1.5"),
    (['sweep.seeds=["one"]'], "sweep.seeds[0] must be a whole number, got 'one'"),
    (["sweep.max_trainers=0"], "sweep.max_trainers must be >= 1 (got 0)"),
    (["sweep.seeds=[0, 1, 2]", "sweep.max_trainers=11"],
     "the sweep has 4 settings x 3 seed(s) = 12 Trainers, more than sweep.max_trainers = 11; shrink the grid"),
])
def test_bad_seeds_and_too_many_trainers_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError) as err:
        _config(*GRID, *settings)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_default_cap_admits_the_explode_grid_over_four_seeds_and_refuses_beyond():
    eight = ['sweep.strategies=["none", "global_norm", "percentile", "agc", "zclip"]', "sweep.thresholds=[1, 5, 15, 50]"]
    assert len(sweep.points(_config(*eight, "sweep.seeds=[0, 1, 2, 3]"))) == 32
    with pytest.raises(ConfigError, match="= 72 Trainers, more than sweep.max_trainers = 64"):
        _config(*eight, "sweep.seeds=[0, 1, 2, 3, 4, 5, 6, 7, 8]")
    with pytest.raises(ConfigError, match="sweep.seeds needs sweep.strategies"):
        _config("sweep.seeds=[0, 1]")
