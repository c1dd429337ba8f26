"""MNIST arrays -> serialized ``tf.Example`` records.

Encoding, chosen by measurement on the 60k training images: ``image`` is an
int64 list of 784 pixels, ``label`` one int64. Packed varints make a record
close to raw bytes in size and a third of floats, while the schema can
still check the pixel domain 0-255 and the 784-value shape, which an opaque
bytes feature cannot. The wire format is written with numpy, several times
faster than building protos with the proto API (tests parse it back against
the proto API; numbers in docs/benchmarks.md).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

IMAGE_KEY = "image"
LABEL_KEY = "label"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: tag byte, varint length, payload."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def _feature_entry(key: str, packed_int64s: bytes) -> bytes:
    int64_list = _field(0x0A, packed_int64s)  # Int64List.value (packed)
    feature = _field(0x1A, int64_list)  # Feature.int64_list
    return _field(0x0A, _field(0x0A, key.encode()) + _field(0x12, feature))  # map entry


def _packed_pixels(images: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Varint-encodes every pixel of every image; returns the bytes and record ends."""
    values = images.reshape(-1)
    wide = values >= 0x80  # 128..255 take two varint bytes, the rest one
    widths = 1 + wide.astype(np.int32)  # int32: 70k images stay far below 2**31
    ends = np.cumsum(widths, dtype=np.int32)
    starts = ends - widths
    buf = np.empty(int(ends[-1]), dtype=np.uint8)
    buf[starts] = np.where(wide, (values & 0x7F) | 0x80, values)
    buf[starts[wide] + 1] = 1
    pixels_per_image = values.size // len(images)
    return buf.tobytes(), ends[pixels_per_image - 1 :: pixels_per_image]


def serialize_examples(images: np.ndarray, labels: np.ndarray) -> Iterator[bytes]:
    """Yields one serialized tf.Example per image (uint8[N, H, W], labels < 128).

    A record is ``head + pixels + label entry`` where the head depends only on
    the encoded pixel length, so heads are built once per length and reused.
    """
    data, record_ends = _packed_pixels(images)
    label_entries = [_feature_entry(LABEL_KEY, bytes((label,))) for label in range(128)]
    heads: dict[int, bytes] = {}
    start = 0
    for end, label in zip(record_ends.tolist(), labels.tolist()):
        size = end - start
        head = heads.get(size)
        if head is None:
            # Split a full record with placeholder pixels at the pixel bytes.
            record = _field(0x0A, _feature_entry(IMAGE_KEY, bytes(size)) + label_entries[0])
            head = heads[size] = record[: len(record) - len(label_entries[0]) - size]
        yield head + data[start:end] + label_entries[label]
        start = end
