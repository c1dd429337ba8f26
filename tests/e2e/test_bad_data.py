"""Each kind of bad MNIST input, through the CLI: exit 2, one line naming file and fix,
MnistExampleGen recorded as FAILED in ML Metadata, no Examples published, nothing downstream run.

The cases run as one batch in one process (tests/e2e/cli_batch.py: the CLI's own ``main``, each case's exit
status and output its own); test_cli_errors runs a bad labels file through a process of its own."""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from components.example_gen.readers import IMAGES_MAGIC, LABELS_MAGIC
from pipeline import metadata
from tests.e2e.run_cli import REPO, assert_one_line_error
from tests.idx_files import idx_bytes, synthetic, write_file, write_split

IMAGES, LABELS = synthetic(20)
T10K_LABELS = "t10k-labels-idx1-ubyte.gz"
T10K_IMAGES = "t10k-images-idx3-ubyte.gz"


def _replace(name, data, raw=False):
    def apply(folder):
        path = os.path.join(folder, name)
        if raw:
            with open(path, "wb") as f:
                f.write(data)
        else:
            write_file(path, data)
    return apply


def _remove(name):
    return lambda folder: os.remove(os.path.join(folder, name))


BAD_LABELS = LABELS.copy()
BAD_LABELS[4] = 11
CASES = {
    "missing labels file": (_remove(T10K_LABELS), "no t10k-labels-idx*-ubyte[.gz] file for the eval split"),
    "wrong magic number": (_replace(T10K_IMAGES, idx_bytes(IMAGES, 7)), "not an MNIST IDX file (magic number 7)"),
    "images file passed as labels": (_replace(T10K_LABELS, idx_bytes(IMAGES, IMAGES_MAGIC)),
                                     "expected a labels file but this is an images file"),
    "truncated images": (_replace(T10K_IMAGES, idx_bytes(IMAGES, IMAGES_MAGIC)[:-100]), "truncated; fetch the file again"),
    "truncated gzip": (_replace(T10K_LABELS, gzip.compress(idx_bytes(LABELS, LABELS_MAGIC))[:-6], raw=True),
                       "gzip data is corrupt or truncated"),
    "header count above records": (_replace(T10K_LABELS, idx_bytes(LABELS, LABELS_MAGIC)[:8] + bytes(10)),
                                   "header says 20 records (20 bytes) but the file holds 10 bytes"),
    "label outside 0-9": (_replace(T10K_LABELS, idx_bytes(BAD_LABELS, LABELS_MAGIC)), "label 11 at record 4 is outside 0-9"),
    "27x27 images": (_replace(T10K_IMAGES, idx_bytes(np.zeros((20, 27, 27)), IMAGES_MAGIC)), "images are 27x27"),
    ".gz that is not gzip": (_replace(T10K_LABELS, idx_bytes(LABELS, LABELS_MAGIC), raw=True), "named .gz but is not gzip data"),
    "zero records": (_replace(T10K_IMAGES, idx_bytes(np.zeros((0, 28, 28)), IMAGES_MAGIC)), "the header says 0 records"),
}


def _object_array_npz(folder):
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros((28, 28)), np.zeros((28, 28))]
    path = folder / "mnist.npz"
    np.savez(path, x_train=objects, y_train=np.zeros(2, np.uint8), x_test=IMAGES, y_test=LABELS)
    return path


def _damaged_npz(damage):
    def make(folder):
        path = folder / "mnist.npz"
        np.savez(path, x_train=IMAGES, y_train=LABELS, x_test=IMAGES, y_test=LABELS)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"<html>404 Not Found</html>")
        return path
    return make


def _idx_folder(case):
    def make(folder):
        data = folder / "data"
        data.mkdir()
        write_split(str(data), "train", IMAGES, LABELS)
        write_split(str(data), "t10k", IMAGES, LABELS)
        CASES[case][0](str(data))
        return data
    return make


NPZ_CASES = {"object arrays": _object_array_npz, "truncated": _damaged_npz("truncated"),
             "not a zip": _damaged_npz("not a zip")}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case's data made, then every case run through the CLI in one batch: case -> (data path, output dir,
    the command's exit status and output)."""
    root = tmp_path_factory.mktemp("bad_data")
    makers = {**{case: _idx_folder(case) for case in CASES}, **NPZ_CASES}
    paths = {}
    for number, (case, make) in enumerate(makers.items()):
        folder = root / f"case{number}"
        folder.mkdir()
        paths[case] = (make(folder), folder / "runs")
    commands = [["--output-dir", str(runs), "--data-dir", str(data)] for data, runs in paths.values()]
    (root / "commands.json").write_text(json.dumps(commands))
    batch = subprocess.run([sys.executable, "-m", "tests.e2e.cli_batch", str(root / "commands.json"),
                            str(root / "results.json")], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert batch.returncode == 0 and "Traceback" not in batch.stderr + batch.stdout, batch.stderr[-3000:]
    results = json.loads((root / "results.json").read_text())
    return {case: (data, str(runs), subprocess.CompletedProcess(command, **result))
            for (case, (data, runs)), command, result in zip(paths.items(), commands, results)}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_mnist_file(case, outcomes):
    data, output_dir, result = outcomes[case]
    assert_one_line_error(result, CASES[case][1])
    assert str(data) in result.stderr  # names the file
    store = metadata.open_store(os.path.join(output_dir, "metadata.sqlite"))
    executions = {e.node: e for e in metadata.run_executions(store, metadata.latest_run_id(store))}
    assert executions["MnistExampleGen"].state == "FAILED"
    assert executions["MnistExampleGen"].outputs.get("examples", []) == []
    types = {t.id: t.name for t in store.get_artifact_types()}
    assert [a.uri for a in store.get_artifacts() if types[a.type_id] == "Examples" and a.state == a.LIVE] == []
    assert set(executions) <= {"MnistExampleGen", "ImportSchemaGen"}


def test_npz_with_object_arrays_is_refused(outcomes):
    assert_one_line_error(outcomes["object arrays"][2], "cannot load without unpickling")


@pytest.mark.parametrize("damage", ["truncated", "not a zip"])
def test_npz_that_is_not_a_whole_zip_archive(damage, outcomes):
    path, _, result = outcomes[damage]
    assert_one_line_error(result, f"{path}: not an .npz (zip) archive, or a truncated one; fetch the file again")
