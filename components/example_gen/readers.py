"""Readers for MNIST's canonical IDX files and keras' ``mnist.npz``.

Both return ``(images uint8[N, 28, 28], labels uint8[N])`` after checking
everything a corrupted or mixed-up file could get wrong, so a bad file fails
here with one line naming it, never deep inside Beam or TensorFlow.

An IDX split can also be read in record ranges: ``plan_idx_split`` makes the
same checks reading the images file as a stream (its header, then its
length), and ``read_idx_range`` reads one range, so no reader holds a whole
images file (ExampleGen's chunks). A gzip stream decompresses only from its
start, so ranges read from a .gz file would decompress everything before
each of them again (about c/2 passes for c ranges): the plan decompresses a
gzipped images file once, into a scratch copy the ranges are read from.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import os
import zipfile
import zlib
from typing import BinaryIO, Iterator, Tuple

import numpy as np
import tensorflow as tf

from components.common.errors import DataError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IMAGE_SIDE = 28
IMAGE_BYTES = IMAGE_SIDE * IMAGE_SIDE
IMAGES_OFFSET = 16  # an idx3 header: magic and three dimensions, 4 bytes each
STREAM_BLOCK = 1 << 20  # bytes per read when a file is streamed
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
    _check_length(len(raw), offset, count, record_size, path)
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)


def _check_length(length: int, offset: int, count: int, record_size: int, path: str) -> None:
    """The file's length (after decompression) against what its header says."""
    if count == 0:
        raise DataError(f"{path}: the header says 0 records; the file holds no data")
    actual = length - offset
    expected = count * record_size
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{path}: header says {count} records ({expected} bytes) but the file holds {actual} bytes: "
            f"{problem}; fetch the file again"
        )


def _images_header(raw: bytes, path: str) -> int:
    """The record count of an idx3 images file of 28x28 images, from its first 16 bytes."""
    count, rows, cols = _header(raw, path, IMAGES_MAGIC, 3)
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{path}: images are {rows}x{cols}, MNIST images are 28x28; use the MNIST files")
    return count


def parse_images(raw: bytes, path: str) -> np.ndarray:
    """Parses an idx3 images file into uint8[N, 28, 28]."""
    count = _images_header(raw, path)
    return _payload(raw, IMAGES_OFFSET, count, IMAGE_BYTES, path).reshape(count, IMAGE_SIDE, IMAGE_SIDE)


def parse_labels(raw: bytes, path: str) -> np.ndarray:
    """Parses an idx1 labels file into uint8[N]."""
    (count,) = _header(raw, path, LABELS_MAGIC, 1)
    return _payload(raw, 8, count, 1, path)


def read_idx_split(images_path: str, labels_path: str) -> Split:
    images = parse_images(read_file_bytes(images_path), images_path)
    labels = parse_labels(read_file_bytes(labels_path), labels_path)
    return check_split(images, labels, f"{images_path} + {labels_path}")


@contextlib.contextmanager
def _stream(path: str) -> Iterator[BinaryIO]:
    """The file's bytes as a stream (any TF filesystem), decompressed when it is named .gz; gzip damage
    found while reading is a one-line DataError, as in ``read_file_bytes``."""
    try:
        with tf.io.gfile.GFile(path, "rb") as raw:
            if not path.endswith(".gz"):
                yield raw
                return
            if raw.read(2) != b"\x1f\x8b":
                raise DataError(f"{path}: named .gz but is not gzip data; decompress or rename it")
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped
    except tf.errors.NotFoundError:
        raise DataError(f"{path}: file not found; check the data directory") from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: gzip data is corrupt or truncated ({err}); fetch the file again") from None


@dataclasses.dataclass(frozen=True)
class IdxPlan:
    """A checked IDX split, to be read in record ranges: the uncompressed images file to read them
    from (the split's own, or its scratch copy) and its labels (a byte each)."""

    images_path: str
    labels: bytes

    @property
    def count(self) -> int:
        return len(self.labels)


def plan_idx_split(images_path: str, labels_path: str, scratch_dir: str) -> IdxPlan:
    """Every check ``read_idx_split`` makes, with the images file read as a stream: no more than a
    block of it is in memory at once. A gzipped images file is decompressed into ``scratch_dir``
    (any TF filesystem: where a distributed runner's workers can read it) as it is read."""
    readable = images_path
    with contextlib.ExitStack() as stack:
        images = stack.enter_context(_stream(images_path))
        header = images.read(IMAGES_OFFSET)
        count = _images_header(header, images_path)
        copy = None
        if images_path.endswith(".gz"):
            tf.io.gfile.makedirs(scratch_dir)
            readable = os.path.join(scratch_dir, os.path.basename(images_path)[: -len(".gz")])
            copy = stack.enter_context(tf.io.gfile.GFile(readable, "wb"))
            copy.write(header)
        length = len(header)
        for block in iter(lambda: images.read(STREAM_BLOCK), b""):
            length += len(block)
            if copy is not None:
                copy.write(block)
    _check_length(length, IMAGES_OFFSET, count, IMAGE_BYTES, images_path)
    labels = parse_labels(read_file_bytes(labels_path), labels_path)
    check_counts(count, labels, f"{images_path} + {labels_path}")
    return IdxPlan(readable, labels.tobytes())


def read_idx_range(images_path: str, start: int, stop: int) -> np.ndarray:
    """Images ``start`` to ``stop - 1`` of a planned IDX file (``IdxPlan.images_path``), as uint8[stop - start, 28, 28]."""
    with _stream(images_path) as images:
        images.seek(IMAGES_OFFSET + start * IMAGE_BYTES)
        data = images.read((stop - start) * IMAGE_BYTES)
    if len(data) != (stop - start) * IMAGE_BYTES:
        raise DataError(f"{images_path}: shorter than when it was checked; was it replaced during the run?")
    return np.frombuffer(data, dtype=np.uint8).reshape(stop - start, IMAGE_SIDE, IMAGE_SIDE)


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
    check_counts(len(images), labels, where)
    return images, labels


def check_counts(image_count: int, labels: np.ndarray, where: str) -> None:
    """As many images as labels, some of them, every label a digit."""
    if image_count != len(labels):
        raise DataError(f"{where}: {image_count} images but {len(labels)} labels; use matching files")
    if image_count == 0:
        raise DataError(f"{where}: no records; the files are empty")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(
            f"{where}: label {int(labels[bad[0]])} at record {int(bad[0])} is outside 0-9; the labels file is corrupt"
        )
