"""The local run on the slice (the ``first_run`` fixture) as the reference other runners are held to."""
import os

import tensorflow as tf

from pipeline import metadata


def open_store(output_dir: str):
    return metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))


def first_run_id(store) -> str:
    """The output dir's first pipeline run (later tests re-run in the same dir)."""
    return min(store.get_contexts_by_type(metadata.RUN_CONTEXT), key=lambda c: (c.create_time_since_epoch, c.id)).name


def reference_executions(output_dir: str) -> dict:
    """node -> NodeExecution of the output dir's first pipeline run."""
    store = open_store(output_dir)
    return {e.node: e for e in metadata.run_executions(store, first_run_id(store))}


def first_run_properties(output_dir: str) -> dict:
    """node -> the exec properties ML Metadata recorded for it in the first run."""
    return {node: e.properties for node, e in reference_executions(output_dir).items()}


def read_examples(examples_uri: str) -> dict:
    """split -> the serialized examples an ExampleGen wrote, in a canonical order."""
    result = {}
    for split in ("train", "eval"):
        files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
        assert files and not any(f.endswith(".gz") for f in files)  # written uncompressed
        result[split] = sorted(r.numpy() for r in tf.data.TFRecordDataset(files))
    return result
