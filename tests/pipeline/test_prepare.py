"""Command-line flags -> settings, and the path rules of each kind of runner."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components.common.errors import ConfigError, DataError
from components.example_gen.component import IDX_PATTERNS, locate_split
from pipeline.data_source import resolve_data_dir
from pipeline.prepare import build_config
from pipeline.run import flag_settings, parse_args
from tests.idx_files import synthetic, write_split

CLUSTER = ["--runner", "kubeflow-v2", "--data-dir", "gs://bucket/mnist", "--output-dir", "gs://bucket/root"]


def write_idx_files(base: str):
    """Four tiny IDX files under ``base`` (any TensorFlow file system); returns the images and labels."""
    images, labels = synthetic(5)
    tf.io.gfile.makedirs(base)
    for prefix in ("train", "t10k"):
        write_split(base, prefix, images, labels, gz=False)
    return images, labels


def _config(argv, env_data_dir=None):
    args = parse_args(argv)
    return build_config(env_data_dir, args.config, args.set, flag_settings(args))


def test_beam_args_and_kubeflow_flags_become_settings(tmp_path):
    config = _config([
        *CLUSTER, "--beam-arg=--direct_running_mode=multi_processing", "--beam-arg=--direct_num_workers=2",
        "--output", str(tmp_path / "spec.json"), "--image", "gcr.io/p/clipflow:1",
        "--submit-vertex", "--project", "p", "--region", "europe-west4", "--service-account", "sa@p.iam",
    ])
    assert config.pipeline.beam_args == ("--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert config.kubeflow.output_file == str(tmp_path / "spec.json")
    settings = config.kubeflow
    assert (settings.image, settings.project, settings.region) == ("gcr.io/p/clipflow:1", "p", "europe-west4")
    assert config.kubeflow.submit_vertex is True and config.kubeflow.service_account == "sa@p.iam"


def test_cluster_paths_are_kept_as_given_and_local_env_data_is_not_used(tmp_path):
    config = _config(CLUSTER, env_data_dir=str(tmp_path))
    assert (config.data.data_dir, config.pipeline.output_dir) == ("gs://bucket/mnist", "gs://bucket/root")
    assert not os.path.exists("gs:")  # nothing was created for a remote output dir


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--runner", "kubeflow-v2", "--output-dir", "gs://b/r"], "data.data_dir '' must be a URI or absolute path"),
        (["--runner", "kubeflow-v2", "--output-dir", "runs", "--data-dir", "gs://b/m"], "pipeline.output_dir 'runs' must be"),
        (["--output-dir", "gs://b/r"], "add --metadata-dir LOCAL_FOLDER"),
        (["--runner", "beam", "--output-dir", "s3://b/r"], "the beam runner keeps ML Metadata"),
        (["--output-dir", "ram://clipflow-test/r", "--metadata-dir", "ram://clipflow-test/m"], "must be a local folder"),
    ],
)
def test_paths_a_runner_cannot_use_are_refused(argv, message, tmp_path):
    with pytest.raises(ConfigError) as err:
        _config(argv, env_data_dir=str(tmp_path))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_remote_output_dir_with_a_local_metadata_dir(tmp_path):
    """ram:// stands in for gs://: artifacts go there; run state goes to the local metadata dir."""
    write_idx_files(str(tmp_path / "mnist"))
    config = _config(["--output-dir", "ram://clipflow-test/out", "--metadata-dir", str(tmp_path / "meta")],
                     env_data_dir=str(tmp_path / "mnist"))
    assert config.pipeline.output_dir == "ram://clipflow-test/out"
    assert tf.io.gfile.isdir("ram://clipflow-test/out")  # created and probed with a write, not mistaken for a local path
    assert config.pipeline.local_dir == str(tmp_path / "meta") and os.path.isdir(tmp_path / "meta")
    assert not os.path.exists("ram:")


def test_unwritable_output_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        _config(["--output-dir", str(tmp_path), "--metadata-dir", str(blocker / "meta")], env_data_dir=str(tmp_path))
    assert f"pipeline.metadata_dir {blocker / 'meta'} cannot be written" in str(err.value)
    assert "choose another --metadata-dir" in str(err.value) and "\n" not in str(err.value)


def test_data_dir_on_another_tensorflow_filesystem():
    """ram:// stands in for gs://: both are TensorFlow file systems, not local folders."""
    base = "ram://clipflow-test/mnist"
    images, labels = write_idx_files(base)
    assert resolve_data_dir(base, None) == base
    read_images, read_labels = locate_split(base, "eval", IDX_PATTERNS["eval"]).read()
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    with pytest.raises(DataError, match="no such folder"):
        resolve_data_dir("ram://clipflow-test/elsewhere", None)
