"""Read a pipeline run back from ML Metadata: executions, timings, outputs."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import sqlite3
from typing import Dict, List, Mapping, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.common.errors import ConfigError

RUN_CONTEXT = "pipeline_run"
NODE_CONTEXT = "node"


@dataclasses.dataclass(frozen=True)
class NodeExecution:
    node: str  # component id, e.g. "Trainer"
    state: str  # COMPLETE, CACHED, FAILED, ...
    wall_seconds: float
    outputs: Dict[str, List[metadata_store_pb2.Artifact]]  # output key -> artifacts
    properties: Mapping[str, metadata_store_pb2.Value]  # the exec properties TFX recorded (custom_config, ...)
    execution_id: int
    started: float  # seconds since the epoch


def check_store(metadata_db: str) -> None:
    """A store that exists must be a sound SQLite database: a damaged one would
    end the run deep inside TFX. (A missing one is fine: TFX creates it.)"""
    if not os.path.exists(metadata_db):
        return
    try:
        with contextlib.closing(sqlite3.connect(pathlib.Path(metadata_db).absolute().as_uri() + "?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as err:
        verdict = str(err)
    if verdict != "ok":
        raise ConfigError(
            f"{metadata_db} is not a readable ML Metadata database ({verdict}); it holds this output dir's cache "
            "and run history: move it aside to start afresh, or choose another --output-dir"
        )


def open_store(metadata_db: str, writable: bool = False) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_db
    modes = metadata_store_pb2.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = modes.READWRITE if writable else modes.READONLY
    return metadata_store.MetadataStore(config)


def latest_run_id(store: metadata_store.MetadataStore) -> Optional[str]:
    runs = store.get_contexts_by_type(RUN_CONTEXT)
    return max(runs, key=lambda c: (c.create_time_since_epoch, c.id)).name if runs else None


def run_executions(store: metadata_store.MetadataStore, run_id: str) -> List[NodeExecution]:
    """The executions of one pipeline run, in the order they started."""
    context = store.get_context_by_type_and_name(RUN_CONTEXT, run_id)
    return _node_executions(store, store.get_executions_by_context(context.id))


def node_executions(store: metadata_store.MetadataStore, node: str) -> List[NodeExecution]:
    """Every execution of one component (``Trainer``, and a sweep's ``Trainer.<point>`` with it) over all the
    pipeline's runs, in the order they started."""
    contexts = [c for c in store.get_contexts_by_type(NODE_CONTEXT)
                if c.name.split(".", 1)[-1] == node or c.name.split(".", 1)[-1].startswith(node + ".")]
    return _node_executions(store, [e for c in contexts for e in store.get_executions_by_context(c.id)])


def _node_executions(store: metadata_store.MetadataStore, executions) -> List[NodeExecution]:
    executions = sorted(executions, key=lambda e: (e.create_time_since_epoch, e.id))
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifacts = {a.id: a for a in store.get_artifacts_by_id({ev.artifact_id for ev in events})}
    result = []
    for execution in executions:
        nodes = [c for c in store.get_contexts_by_execution(execution.id) if c.type == NODE_CONTEXT]
        outputs: Dict[str, List[metadata_store_pb2.Artifact]] = {}
        for ev in events:
            if ev.execution_id == execution.id and ev.type in (ev.OUTPUT, ev.DECLARED_OUTPUT):
                key = ev.path.steps[0].key if ev.path.steps else ""
                outputs.setdefault(key, []).append(artifacts[ev.artifact_id])
        result.append(
            NodeExecution(
                node=nodes[0].name.split(".", 1)[-1] if nodes else str(execution.type),
                state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                wall_seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0,
                outputs=outputs,
                properties=execution.custom_properties,
                execution_id=execution.id,
                started=execution.create_time_since_epoch / 1000.0,
            )
        )
    return result


def custom_int(artifact: metadata_store_pb2.Artifact, key: str) -> Optional[int]:
    value = artifact.custom_properties.get(key)
    return value.int_value if value is not None else None


def custom_str(artifact: metadata_store_pb2.Artifact, key: str) -> Optional[str]:
    value = artifact.custom_properties.get(key)
    return value.string_value if value is not None else None
