"""TF_CONFIG read and checked in one place: the three ways it cannot describe this process, each one
line naming TF_CONFIG and the fix; the forms a cluster manager writes pass."""
import json

import pytest

from components.common.errors import ConfigError
from components.trainer import distribute, tf_config

CLUSTER = {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"]}


@pytest.mark.parametrize("value, expected", [
    ("{cluster: 1}", "TF_CONFIG is not valid JSON (Expecting property name enclosed in double quotes"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG names no cluster"),
    ("{}", "TF_CONFIG names no cluster"),
    ("[1, 2]", "TF_CONFIG names no cluster"),
    ('{"cluster": {}}', "TF_CONFIG names no cluster"),
    ('{"cluster": {"worker": "host1:2222"}}', "TF_CONFIG names no cluster"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}),
     "TF_CONFIG's task for this process, " '{"type": "worker", "index": 2}, is not in its cluster (chief: 1, worker: 2'),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "ps", "index": 0}}), "is not in its cluster"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": "1"}}), "is not in its cluster"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": -1}}), "is not in its cluster"),
    (json.dumps({"cluster": {"chief": ["host0:2222"]}}), "task for this process, none (so worker 0), is not in"),
])
def test_a_tf_config_that_cannot_describe_this_process_is_one_line(monkeypatch, value, expected):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ConfigError) as raised:
        tf_config.read()
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert "unset TF_CONFIG to run on this machine alone" in message


@pytest.mark.parametrize("spec, multi_worker, chief", [
    ({"cluster": {"worker": ["localhost:2222"]}, "task": {"type": "worker", "index": 0}}, False, True),
    ({"cluster": {"chief": ["host0:2222"]}, "task": {"type": "chief", "index": 0}}, False, True),
    ({"cluster": CLUSTER, "task": {"type": "worker", "index": 1}}, True, False),
    ({"cluster": {"worker": ["a:1", "b:1"]}}, True, True),  # no task: worker 0, as TensorFlow assumes
])
def test_what_a_cluster_manager_writes_passes(monkeypatch, spec, multi_worker, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
    assert tf_config.read() == spec
    assert distribute.is_multi_worker() is multi_worker
    assert distribute.is_chief() is chief


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_or_empty_is_one_process(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    assert tf_config.read() == {}
    assert not distribute.is_multi_worker() and distribute.is_chief()
