"""What a run reports must be there, also when it is answered from the cache.

TFX reuses a component's outputs when the folders it recorded for them exist
(tfx/orchestration/portable/cache_utils.py). That misses what a component
copied elsewhere (the Pusher's serving model) and a folder emptied rather
than removed. So, before a run, each reported artifact whose files are gone
is marked DELETED in ML Metadata: TFX's cache takes only LIVE outputs, so the
component that made it runs again if the run needs it (the Pusher pushes the
blessed model again, the Trainer trains again). After the run, the summary
prints only paths that are there.
"""
from __future__ import annotations

from typing import List, Optional

import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from pipeline import metadata

PUSHED_MODEL = "PushedModel"
REPORTED_TYPES = ("Model", "ModelRun", PUSHED_MODEL)  # the model, its TensorBoard logs, the serving model


def is_there(path: Optional[str]) -> bool:
    """A file, or a folder with something in it (any file system TensorFlow opens)."""
    if not path or not tf.io.gfile.exists(path):
        return False
    return not tf.io.gfile.isdir(path) or bool(tf.io.gfile.listdir(path))


def reported_path(type_name: str, artifact: metadata_store_pb2.Artifact) -> Optional[str]:
    """Where the run reports the artifact: the pushed copy of a pushed model (None if nothing was
    pushed), the artifact's folder otherwise."""
    if type_name == PUSHED_MODEL:
        pushed = metadata.custom_int(artifact, "pushed") == 1
        return metadata.custom_str(artifact, "pushed_destination") if pushed else None
    return artifact.uri


def forget_missing(metadata_db: str) -> Optional[str]:
    """Marks DELETED every live reported artifact whose files are gone; returns a line saying so, or None."""
    if not tf.io.gfile.exists(metadata_db):
        return None
    store = metadata.open_store(metadata_db, writable=True)
    gone: List[str] = []
    for type_name in REPORTED_TYPES:
        for artifact in store.get_artifacts_by_type(type_name):
            path = reported_path(type_name, artifact)
            if artifact.state == metadata_store_pb2.Artifact.LIVE and path and not is_there(path):
                artifact.state = metadata_store_pb2.Artifact.DELETED
                store.put_artifacts([artifact])
                gone.append(path)
    if not gone:
        return None
    more = f" and {len(gone) - 1} more" if len(gone) > 1 else ""
    return (f"gone since they were made: {gone[0]}{more}; marked deleted in ML Metadata, so what this run "
            "needs of them is made again, not answered from the cache")
