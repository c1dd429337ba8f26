import json
import re
import subprocess
import sys

import pytest

from components.common.errors import ConfigError
from components.trainer.options import STRATEGIES
from components.trainer.options import TrainingOptions
from pipeline.config import PipelineConfig, load_config
from tests.e2e.run_cli import REPO


def test_defaults_are_the_documented_ones():
    config = load_config()
    assert config.trainer.hidden_units == (512, 256)
    assert config.clip.strategy == "global_norm" and config.clip.threshold == 0.5
    assert config.transform.mode == "divide" and config.transform.divisor == 255.0
    assert config.evaluator.accuracy_threshold == 0.95
    assert config.pipeline.output_dir == "runs"


def test_toml_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[trainer]\nepochs = 7\nhidden_units = [64, 32]\n[clip]\nstrategy = "norm"\n')
    config = load_config(str(path), ["trainer.epochs=2", "clip.threshold=3", "transform.mode=z_score"])
    assert config.trainer.epochs == 2  # override beats file
    assert config.trainer.hidden_units == (64, 32)
    assert config.clip.strategy == "norm" and config.clip.threshold == 3.0
    assert config.transform.mode == "z_score"


def test_json_round_trip_and_custom_config():
    config = load_config(None, ["clip.strategy=percentile", "trainer.optimizer=sgd"])
    assert PipelineConfig.from_dict(json.loads(config.to_json())) == config
    options = TrainingOptions.from_custom_config(json.loads(json.dumps(config.trainer_custom_config())))
    assert options == TrainingOptions(config.trainer, config.clip, config.telemetry)
    assert config.transform_custom_config() == {"scaling": {"mode": "divide", "divisor": 255.0}}


@pytest.mark.parametrize(
    "override,message",
    [
        ("trainer.epochz=3", "unknown setting trainer.epochz"),
        ("bogus.key=1", "unknown setting bogus"),
        ("trainer.epochs=three", "trainer.epochs must be a whole number, got 'three'"),
        ("trainer.epochs=1.5", "trainer.epochs must be a whole number"),
        ("clip.threshold=0", "clip.threshold must be > 0"),
        ("clip.threshold=-2", "clip.threshold must be > 0"),
        ("clip.strategy=sometimes", "clip.strategy: unknown strategy 'sometimes'; known: none, value, norm, global_norm"),
        ("clip.strategy=adaptive", "clip.strategy: 'adaptive' is renamed: use 'percentile' (AutoClip"),
        ("clip.max_nonfinite_steps=3", "setting clip.max_nonfinite_steps is renamed: use clip.max_consecutive_nonfinite"),
        ("clip.max_consecutive_nonfinite=0", "clip.max_consecutive_nonfinite must be >= 1"),
        ("trainer.init=he_normal", "trainer.init must be one of glorot_uniform, truncated_normal; got 'he_normal'"),
        ("transform.mode=log", "transform.mode must be one of divide, min_max, z_score"),
        ("transform.divisor=0", "transform.divisor must not be 0"),
        ("trainer.batch_size=0", "trainer.batch_size must be >= 1"),
        ("trainer.memory_budget_mb=0", "trainer.memory_budget_mb must be >= 1"),
        ("trainer.learning_rate=0", "trainer.learning_rate must be > 0"),
        ("trainer.lr_schedule=linear", "trainer.lr_schedule must be one of constant, cosine; got 'linear'"),
        ("trainer.hidden_units=[]", "trainer.hidden_units must be a non-empty list"),
        ("evaluator.accuracy_threshold=1.5", "evaluator.accuracy_threshold must be in [0, 1]"),
        ("pipeline.enable_cache=yes", "pipeline.enable_cache must be a bool"),
        ("clip.threshold=nan", "clip.threshold must be a finite number, got nan"),
        ("clip.threshold=inf", "clip.threshold must be a finite number, got inf"),
        ("trainer.learning_rate=-inf", "trainer.learning_rate must be a finite number, got -inf"),
        ("transform.divisor=nan", "transform.divisor must be a finite number"),
        ("clip.lo=-inf", "clip.lo must be a finite number"),
        ("health.max_clipped_fraction=nan", "health.max_clipped_fraction must be a finite number"),
        ("telemetry.update_every_n_steps=-1", "telemetry.update_every_n_steps must be >= 0 (got -1); 0 turns update norms off"),
        ("telemetry.updates=false", "unknown setting telemetry.updates; known settings here: clip_rate_window"),
        ("pipeline.runner=airflow", "pipeline.runner must be one of local, beam, kubeflow-v2; got 'airflow'"),
        ("pipeline.output_dir='gs://b/runs'",
         "the local runner keeps ML Metadata (SQLite), the run lock and logs in one; add --metadata-dir"),
        ("pipeline.metadata_dir='gs://b/meta'", "pipeline.metadata_dir gs://b/meta must be a local folder"),
        ("kubeflow.output_file=spec.yaml", "kubeflow.output_file must end in .json"),
        ("kubeflow.submit_vertex=true", "--submit-vertex needs --project and --region"),
        ("trainer=5", "trainer must be a table of settings"),
        ("noequals", "--set takes section.key=value"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_value_clip_bounds_must_be_ordered():
    with pytest.raises(ConfigError, match=r"clip.lo must be below clip.hi=1.0 \(got 2.0\)"):
        load_config(None, ["clip.strategy=value", "clip.lo=2", "clip.hi=1"])


@pytest.mark.parametrize(
    "strategy,settings,message",
    [
        ("agc", ["clip.ratio=0"], "clip.ratio must be > 0"),
        ("agc", ["clip.eps=-1"], "clip.eps must be > 0"),
        ("percentile", ["clip.percentile=0"], "clip.percentile must be in (0, 100]"),
        ("percentile", ["clip.window=0"], "clip.window must be >= 1"),
        ("norm", ["clip.threshold=-1"], "clip.threshold must be > 0"),
        ("zclip", ["clip.alpha=1"], "clip.alpha must be in (0, 1) (got 1.0); e.g. 0.97"),
        ("zclip", ["clip.alpha=0"], "clip.alpha must be in (0, 1) (got 0.0)"),
        ("zclip", ["clip.z_threshold=0"], "clip.z_threshold must be > 0"),
        ("zclip", ["clip.warmup_steps=0"], "clip.warmup_steps must be >= 1 (got 0); e.g. 25"),
        ("zclip", ["clip.first_step_scale=0"], "clip.first_step_scale must be in (0, 1]"),
    ],
)
def test_only_the_active_strategys_settings_are_validated(strategy, settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [f"clip.strategy={strategy}", *settings])
    setting = settings[0].split("=")[0].split(".")[1]
    others = [name for name, spec in STRATEGIES.items() if setting not in spec.settings]
    assert others
    for other in others:  # the same value means nothing to a strategy that does not read it
        assert load_config(None, [f"clip.strategy={other}", *settings]).clip.strategy == other


def test_bad_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[trainer\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "missing.toml"))


def test_runner_names_match_the_runner_modules():
    import typing  # noqa: PLC0415  (this module must load without TensorFlow; runners import it)

    from pipeline import runners  # noqa: PLC0415
    from pipeline.config import PipelineSettings  # noqa: PLC0415

    names = set(typing.get_args(typing.get_type_hints(PipelineSettings)["runner"]))
    assert names == set(runners.EMBEDDED) | set(runners.COMPILED)
    for name, module in {**runners.EMBEDDED, **runners.COMPILED}.items():
        assert runners._runner_module(name).__name__  # noqa: SLF001 == f"pipeline.runners.{module}"


def test_config_loads_without_tensorflow():
    """The CLI validates settings before TensorFlow (slow, noisy) is imported."""
    code = ("import sys, pipeline.config, pipeline.data_source; "
            "print(sorted(m for m in ('tensorflow', 'tfx') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.stdout.strip() == "[]", result.stderr[-2000:]


@pytest.mark.parametrize(
    "settings,message",
    [
        (["clip.spike_sigmas=0"], "clip.spike_sigmas must be > 0 (got 0.0); e.g. 6"),
        (["clip.spike_sigmas=-1"], "clip.spike_sigmas must be > 0 (got -1.0)"),
        (["clip.spike_window=0"], "clip.spike_window must be >= 4 (half of it must hold two steps) (got 0)"),
        (["clip.max_consecutive_spikes=0"], "clip.max_consecutive_spikes must be >= 1 (got 0)"),
    ],
)
def test_the_spike_guards_settings_are_validated_where_it_is_on(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, ["clip.skip_spikes=true", *settings])
    assert not load_config(None, settings).clip.skip_spikes  # off, they mean nothing


@pytest.mark.parametrize(
    "settings,message",
    [
        (["trainer.rollback_steps_back=-1"], "trainer.rollback_steps_back must be >= 0 (got -1)"),
        (["trainer.rollback_skip_batches=-5"], "trainer.rollback_skip_batches must be >= 0 (got -5)"),
        (["trainer.max_rollbacks=-1"], "trainer.max_rollbacks must be >= 0 (got -1)"),
        (["trainer.on_divergence=\"rollback\"", "trainer.checkpoint_every_n_steps=0"],
         'trainer.on_divergence = "rollback" returns to a checkpoint: set trainer.checkpoint_every_n_steps > 0'),
        (["trainer.on_divergence=retry"], "trainer.on_divergence must be one of stop, rollback; got 'retry'"),
        (["trainer.on_divergence=\"rollback\""],  # the default checkpoint cadence, 500, against 100 steps back
         'trainer.on_divergence = "rollback" needs a checkpoint at least every rollback_steps_back steps: '
         "trainer.checkpoint_every_n_steps = 500 > trainer.rollback_steps_back = 100; "
         "set trainer.checkpoint_every_n_steps=100"),
    ],
)
def test_bad_rollback_settings_are_one_line(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_config(None, settings)
    assert "\n" not in str(err.value)
