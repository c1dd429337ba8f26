"""TFX's own MNIST example pipeline, the baseline of ``bench/pipeline_e2e.py --reference``.

It is ``tfx/examples/mnist/mnist_pipeline_native_keras.py`` as shipped in the
installed tfx 1.16 (ImportExampleGen -> StatisticsGen -> SchemaGen ->
ExampleValidator -> Transform -> Trainer (784-64-64-10 Keras, 5000 steps) ->
Evaluator -> Pusher, module_file), built with its own ``_create_pipeline`` and
run with the LocalDagRunner on all 70,000 MNIST images written as the
example expects them: ``image_floats`` (784 floats) and ``image_class``.
Each run is a fresh child process, timed from the outside, with either the
example's own Beam args (multi-processing, one worker per CPU) or none (in-process).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Dict, List

from bench.common import run_command

EXAMPLE_BEAM_ARGS = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]  # the example's _beam_pipeline_args


def write_records(mnist_dir: str, data_root: str) -> None:
    """Train and t10k images in one TFRecord file (ImportExampleGen hash-splits them 2:1, as in the example)."""
    import tensorflow as tf  # noqa: PLC0415

    from components.example_gen.readers import read_idx_split  # noqa: PLC0415

    os.makedirs(data_root, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(data_root, "mnist.tfrecord")) as writer:
        for prefix in ("train", "t10k"):
            images, labels = read_idx_split(
                os.path.join(mnist_dir, f"{prefix}-images-idx3-ubyte.gz"),
                os.path.join(mnist_dir, f"{prefix}-labels-idx1-ubyte.gz"),
            )
            for image, label in zip(images.reshape(len(images), -1).astype(float), labels):
                features = {
                    "image_floats": tf.train.Feature(float_list=tf.train.FloatList(value=image)),
                    "image_class": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def run_child(data_root: str, work: str, beam_args: List[str]) -> None:
    """In the child process: build the example's pipeline and run it; print component times as JSON."""
    from tfx.examples.mnist import mnist_pipeline_native_keras as example  # noqa: PLC0415
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # noqa: PLC0415

    from pipeline import metadata  # noqa: PLC0415

    module_file = os.path.join(os.path.dirname(example.__file__), "mnist_utils_native_keras.py")
    metadata_db = os.path.join(work, "metadata.db")
    LocalDagRunner().run(example._create_pipeline(  # noqa: SLF001 (the example's own builder)
        pipeline_name="mnist_native_keras", pipeline_root=os.path.join(work, "pipeline"), data_root=data_root,
        module_file=module_file, serving_model_dir=os.path.join(work, "serving_model"),
        metadata_path=metadata_db, beam_pipeline_args=beam_args,
    ))
    store = metadata.open_store(metadata_db)
    executions = metadata.run_executions(store, metadata.latest_run_id(store))
    print(json.dumps({e.node: e.wall_seconds for e in executions}))


def run_reference(data_root: str, beam_args: List[str]) -> Dict:
    """One fresh run in a child process: {"wall": seconds, "components": {node: seconds}}."""
    work = tempfile.mkdtemp(prefix="tfx-mnist-reference-")
    measured = run_command([sys.executable, "-m", "bench.reference_mnist", data_root, work, *beam_args],
                           "TFX's MNIST example")
    return {"wall": measured.wall, "components": json.loads(measured.stdout.strip().splitlines()[-1])}

if __name__ == "__main__":
    run_child(sys.argv[1], sys.argv[2], sys.argv[3:])
