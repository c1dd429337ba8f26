"""Readers for MNIST's canonical IDX files and keras' ``mnist.npz``.

Both return ``(images uint8[N, 28, 28], labels uint8[N])`` after checking
everything a corrupted or mixed-up file could get wrong, so a bad file fails
here with one line naming it, never deep inside Beam or TensorFlow.
"""
from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from typing import Tuple

import numpy as np
import tensorflow as tf

from components.common.errors import DataError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IMAGE_SIDE = 28
NUM_CLASSES = 10

Split = Tuple[np.ndarray, np.ndarray]

# keras' mnist.npz keys for each of our split names.
NPZ_KEYS = {"train": ("x_train", "y_train"), "eval": ("x_test", "y_test")}


def read_file_bytes(path: str) -> bytes:
    """Reads a file (any TF filesystem), gunzipping it when it is named .gz."""
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            raw = f.read()
    except tf.errors.NotFoundError:
        raise DataError(f"{path}: file not found; check the data directory") from None
    if not path.endswith(".gz"):
        return raw
    if raw[:2] != b"\x1f\x8b":
        raise DataError(f"{path}: named .gz but is not gzip data; decompress or rename it")
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: gzip data is corrupt or truncated ({err}); fetch the file again") from None


def _header(raw: bytes, path: str, magic: int, dims: int) -> tuple[int, ...]:
    """Checks the magic number first (it tells which file this is), then returns the dimensions."""
    size = 4 * (dims + 1)
    if len(raw) >= 4:
        _check_magic(int.from_bytes(raw[:4], "big"), magic, path)
    if len(raw) < size:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header; the file is truncated or empty")
    return tuple(int(v) for v in np.frombuffer(raw[4:size], dtype=">u4"))


def _check_magic(magic: int, expected: int, path: str) -> None:
    if magic == expected:
        return
    kinds = {IMAGES_MAGIC: "an images file", LABELS_MAGIC: "a labels file"}
    found = kinds.get(magic, f"not an MNIST IDX file (magic number {magic})")
    wanted = kinds[expected]
    raise DataError(f"{path}: expected {wanted} but this is {found}; check which file is which")


def _payload(raw: bytes, offset: int, count: int, record_size: int, path: str) -> np.ndarray:
    if count == 0:
        raise DataError(f"{path}: the header says 0 records; the file holds no data")
    actual = len(raw) - offset
    expected = count * record_size
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{path}: header says {count} records ({expected} bytes) but the file holds {actual} bytes: "
            f"{problem}; fetch the file again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)


def parse_images(raw: bytes, path: str) -> np.ndarray:
    """Parses an idx3 images file into uint8[N, 28, 28]."""
    count, rows, cols = _header(raw, path, IMAGES_MAGIC, 3)
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{path}: images are {rows}x{cols}, MNIST images are 28x28; use the MNIST files")
    return _payload(raw, 16, count, rows * cols, path).reshape(count, rows, cols)


def parse_labels(raw: bytes, path: str) -> np.ndarray:
    """Parses an idx1 labels file into uint8[N]."""
    (count,) = _header(raw, path, LABELS_MAGIC, 1)
    return _payload(raw, 8, count, 1, path)


def read_idx_split(images_path: str, labels_path: str) -> Split:
    images = parse_images(read_file_bytes(images_path), images_path)
    labels = parse_labels(read_file_bytes(labels_path), labels_path)
    return check_split(images, labels, f"{images_path} + {labels_path}")


def read_npz_split(path: str, split: str) -> Split:
    """Reads one split of a keras-style mnist.npz; pickled objects are refused."""
    image_key, label_key = NPZ_KEYS[split]
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = io.BytesIO(f.read())
        if not zipfile.is_zipfile(data):  # a truncated download, or another kind of file
            raise DataError(f"{path}: not an .npz (zip) archive, or a truncated one; fetch the file again")
        with np.load(data, allow_pickle=False) as archive:
            missing = [k for k in (image_key, label_key) if k not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array {missing[0]!r}; a keras mnist.npz has x_train, y_train, x_test, y_test")
            images, labels = archive[image_key], archive[label_key]
    except tf.errors.NotFoundError:
        raise DataError(f"{path}: file not found; check the data directory") from None
    except ValueError as err:  # numpy refuses object arrays without allow_pickle
        raise DataError(f"{path}: cannot load without unpickling ({err}); provide plain uint8 arrays") from None
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable .npz archive ({err}); fetch the file again") from None
    for key, array in ((image_key, images), (label_key, labels)):
        if array.dtype != np.uint8:
            raise DataError(f"{path}: {key} has dtype {array.dtype}, expected uint8; save the raw MNIST bytes")
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{path}: {image_key} has shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1:
        raise DataError(f"{path}: {label_key} has shape {labels.shape}, expected (N,)")
    return check_split(images, labels, path)


def check_split(images: np.ndarray, labels: np.ndarray, where: str) -> Split:
    """Checks what holds between images and labels of one split."""
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels; use matching files")
    if len(images) == 0:
        raise DataError(f"{where}: no records; the files are empty")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(
            f"{where}: label {int(labels[bad[0]])} at record {int(bad[0])} is outside 0-9; the labels file is corrupt"
        )
    return images, labels
