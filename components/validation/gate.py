"""AnomalyGate: fail the run when ExampleValidator reported anomalies.

TFX's ExampleValidator records anomalies (and a per-split ``blessed`` flag)
but never stops a pipeline. This gate reads its output and raises, so nothing
downstream (Transform, Trainer) runs on bad data, while the anomalies
artifact itself stays published for inspection with TFDV.
"""
# No `from __future__ import annotations`: TFX reads these annotations at runtime.

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifact_utils as artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

from components.common.errors import DataError

ANOMALIES_FILE = "SchemaDiff.pb"


def describe_anomalies(artifact: ExampleAnomalies) -> list[str]:
    """One line per anomaly: split, feature, and TFDV's description."""
    lines = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE)
        anomalies = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            lines.append(f"{split}: feature '{feature}': {info.short_description} ({info.description})")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"{split}: dataset: {info.short_description} ({info.description})")
    return lines


def check_anomalies(artifact: ExampleAnomalies) -> None:
    """Raises DataError listing every anomaly, if there is any."""
    found = describe_anomalies(artifact)
    if found:
        raise DataError(
            "the examples do not match schemas/mnist/schema.pbtxt: " + "; ".join(found)
            + "; fix the input data (or the schema, if the data is right)"
        )


@component
def AnomalyGate(anomalies: InputArtifact[ExampleAnomalies]) -> None:  # noqa: N802 (TFX component name)
    """Stops the run when ExampleValidator found anomalies."""
    check_anomalies(anomalies)
