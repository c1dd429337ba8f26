"""bench.suite_runs counts each pipeline run once, however many stores hold it."""
import shutil

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from bench.suite_runs import pipeline_runs


def _store(path, runs):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri, config.sqlite.connection_mode = str(path), 3  # READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    type_id = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline_run"))
    node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    store.put_contexts([metadata_store_pb2.Context(type_id=type_id, name=run) for run in runs]
                       + [metadata_store_pb2.Context(type_id=node_type, name="Trainer")])


def test_runs_are_counted_once_across_stores_and_other_files_are_passed_over(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _store(tmp_path / "a" / "metadata.sqlite", ["run-1", "run-2"])
    shutil.copy(tmp_path / "a" / "metadata.sqlite", tmp_path / "b" / "metadata.sqlite")  # a seeded copy
    _store(tmp_path / "b" / "other.sqlite", ["run-3"])
    (tmp_path / "b" / "airflow.db").write_bytes(b"not a database")
    assert pipeline_runs(str(tmp_path)) == {"run-1", "run-2", "run-3"}
