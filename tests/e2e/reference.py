"""The local run on the slice (the ``first_run`` fixture) as the reference other runners are held to."""
import os

import tensorflow as tf

from pipeline import metadata


def open_store(output_dir: str):
    return metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))


def first_run_id(store) -> str:
    """The output dir's first pipeline run (later tests re-run in the same dir)."""
    return min(store.get_contexts_by_type(metadata.RUN_CONTEXT), key=lambda c: (c.create_time_since_epoch, c.id)).name


def first_run_properties(output_dir: str) -> dict:
    """node -> the exec properties ML Metadata recorded for it in the first run."""
    store = open_store(output_dir)
    run = store.get_context_by_type_and_name(metadata.RUN_CONTEXT, first_run_id(store))
    by_node = {}
    for execution in store.get_executions_by_context(run.id):
        node = next(c for c in store.get_contexts_by_execution(execution.id) if c.type == metadata.NODE_CONTEXT)
        by_node[node.name.split(".", 1)[-1]] = execution.custom_properties
    return by_node


def reference_executions(output_dir: str) -> dict:
    """node -> NodeExecution of the output dir's first pipeline run."""
    store = open_store(output_dir)
    return {e.node: e for e in metadata.run_executions(store, first_run_id(store))}


def read_examples(examples_uri: str) -> dict:
    """split -> the serialized examples an ExampleGen wrote, in a canonical order."""
    result = {}
    for split in ("train", "eval"):
        files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
        result[split] = sorted(r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    return result
