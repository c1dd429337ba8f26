"""``python -m tests.e2e.ram_run MANIFEST -- PIPELINE_ARGS...``: the pipeline with its
output dir on TensorFlow's in-memory ``ram://`` file system, and what it wrote there.

The store lives only in this process, so the run (LocalDagRunner, in-process
Beam) and the reading back happen here; MANIFEST (a local JSON file) carries
the results to the test: the exit status, the summary, every file under the
output dir, the examples' digests and the pushed model's eval accuracy.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import List

import numpy as np
import tensorflow as tf

from components.example_gen.records import LABEL_KEY
from tests.e2e import ram_filesystem  # noqa: F401  (registers ram:// with Beam)
from tests.e2e.reference import read_examples, reference_executions


def digest(records: List[bytes]) -> str:
    sha = hashlib.sha256()
    for record in records:
        sha.update(record)
    return sha.hexdigest()


def read_back(output_dir: str, metadata_dir: str) -> dict:
    with open(os.path.join(metadata_dir, "summary.json")) as f:
        summary = json.load(f)
    examples_uri = reference_executions(metadata_dir)["MnistExampleGen"].outputs["examples"][0].uri
    examples = read_examples(examples_uri)
    serve = tf.saved_model.load(summary["serving_model"]).signatures["serving_default"]
    probabilities = serve(examples=tf.constant(examples["eval"]))["probabilities"].numpy()
    labels = [tf.train.Example.FromString(r).features.feature[LABEL_KEY].int64_list.value[0] for r in examples["eval"]]
    return {
        "summary": summary,
        "files": [f"{root}/{name}" for root, _, names in tf.io.gfile.walk(output_dir) for name in names],
        "examples_sha256": {split: digest(records) for split, records in examples.items()},
        "serving_accuracy": float(np.mean(probabilities.argmax(axis=1) == np.array(labels))),
    }


def main(argv: List[str]) -> int:
    manifest, separator, *pipeline_args = argv
    assert separator == "--", "usage: python -m tests.e2e.ram_run MANIFEST -- PIPELINE_ARGS..."
    from pipeline.run import main as run_pipeline  # noqa: PLC0415  (after ram:// is registered)

    code = run_pipeline(pipeline_args)
    result = {"returncode": code}
    if code == 0:
        flags = dict(zip(pipeline_args, pipeline_args[1:]))
        result.update(read_back(flags["--output-dir"], flags["--metadata-dir"]))
    with open(manifest, "w") as f:
        json.dump(result, f)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
