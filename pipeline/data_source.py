"""Find MNIST: --data-dir, then $MNIST_DATA_DIR, then the keras cache, then a download.

The caller passes the environment value in; nothing here reads flags or the
environment behind its back.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from typing import Optional

from components.common.errors import DataError
from pipeline.config import is_uri

NPZ_NAME = "mnist.npz"
NPZ_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KERAS_CACHE = os.path.join("~", ".keras", "datasets", NPZ_NAME)
HOW_TO_POINT = (
    "pass --data-dir DIR (a folder with the four MNIST IDX files or mnist.npz), "
    "or set MNIST_DATA_DIR, or put mnist.npz in ~/.keras/datasets/"
)


def mnist_in(path: str) -> str:
    """The data_dir for a folder or .npz path that holds MNIST, or a DataError.

    Paths go through TensorFlow's file system layer, as the ExampleGen's
    readers do, so gs:// and other remote folders are checked the same way."""
    from tensorflow.io import gfile  # noqa: PLC0415  (here: loading the config stays free of TensorFlow)

    if path.endswith(".npz"):
        if gfile.isdir(path) or not gfile.exists(path):
            raise DataError(f"{path}: file not found; {HOW_TO_POINT}")
        return path
    if not gfile.isdir(path):
        raise DataError(f"{path}: no such folder; {HOW_TO_POINT}")
    names = [name.rstrip("/") for name in gfile.listdir(path)]
    if any(n.startswith(("train-", "t10k-")) for n in names):
        return path
    if NPZ_NAME in names:
        return os.path.join(path, NPZ_NAME)
    raise DataError(f"{path}: holds neither MNIST IDX files (train-*, t10k-*) nor {NPZ_NAME}; {HOW_TO_POINT}")


def download_npz(destination: str, url: str = NPZ_URL, sha256: str = NPZ_SHA256) -> str:
    """Downloads mnist.npz, keeping it only if its sha256 matches."""
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(destination), suffix=".partial")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise DataError(f"downloaded {url} has sha256 {digest.hexdigest()}, expected {sha256}; nothing was kept")
        os.replace(partial, destination)
        return destination
    except OSError as err:
        raise DataError(f"could not download {url} ({err}); {HOW_TO_POINT}") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def resolve_data_dir(data_dir: str, env_data_dir: Optional[str], keras_cache: str = KERAS_CACHE) -> str:
    """The first place that holds MNIST, in the documented order."""
    for given in (data_dir, env_data_dir):
        if given:
            return mnist_in(given if is_uri(given) else os.path.abspath(given))
    cached = os.path.expanduser(keras_cache)
    if os.path.isfile(cached):
        return cached
    return download_npz(cached)
