"""Beam's side of TensorFlow's in-memory ``ram://`` file system, for tests.

TensorFlow opens ``ram://`` paths; Beam has no such scheme. This bridge lets
Beam's file IO (ExampleGen's writes, TFDV's and TFMA's reads and writes) use
the same in-process store through ``tf.io.gfile``, so a whole pipeline can run
with an output directory that is not a local folder, as it would on gs://.
Importing the module registers the scheme (Beam finds FileSystem subclasses).
In-process only: the DirectRunner's default in-memory mode.
"""
from __future__ import annotations

import io
from typing import BinaryIO, Iterator, List

import tensorflow as tf
from apache_beam.io.filesystem import BeamIOError, CompressedFile, CompressionTypes, FileMetadata, FileSystem

SCHEME = "ram"


class _Upload(io.BytesIO):
    """A file being written, stored whole on close, as an object store does
    (TensorFlow's ram:// writer cannot ``tell()``, which Beam's writers use)."""

    mode = "wb"  # Beam's CompressedFile asks

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def close(self) -> None:
        if not self.closed:
            with tf.io.gfile.GFile(self._path, "wb") as f:
                f.write(self.getvalue())
        super().close()


class RamFileSystem(FileSystem):
    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path: str) -> None:
        tf.io.gfile.makedirs(path)

    def has_dirs(self) -> bool:
        return True

    def _list(self, dir_or_prefix: str) -> Iterator[FileMetadata]:
        if not tf.io.gfile.exists(dir_or_prefix):
            return
        for root, _, files in tf.io.gfile.walk(dir_or_prefix):
            for name in files:
                yield self.metadata(self.join(root, name))

    def _open(self, path: str, mode: str, compression_type: str) -> BinaryIO:
        raw = _Upload(path) if mode == "wb" else tf.io.gfile.GFile(path, mode)
        compression = FileSystem._get_compression_type(path, compression_type)  # noqa: SLF001 (Beam's own rule)
        return raw if compression == CompressionTypes.UNCOMPRESSED else CompressedFile(raw, compression_type=compression)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO) -> BinaryIO:
        tf.io.gfile.makedirs(self.split(path)[0])
        return self._open(path, "wb", compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO) -> BinaryIO:
        return self._open(path, "rb", compression_type)

    def copy(self, source_file_names: List[str], destination_file_names: List[str]) -> None:
        for source, destination in zip(source_file_names, destination_file_names):
            tf.io.gfile.copy(source, destination, overwrite=True)

    def rename(self, source_file_names: List[str], destination_file_names: List[str]) -> None:
        for source, destination in zip(source_file_names, destination_file_names):
            tf.io.gfile.rename(source, destination, overwrite=True)

    def exists(self, path: str) -> bool:
        return tf.io.gfile.exists(path)

    def size(self, path: str) -> int:
        return self.metadata(path).size_in_bytes

    def last_updated(self, path: str) -> float:
        return self.metadata(path).last_updated_in_seconds

    def checksum(self, path: str) -> str:
        return str(self.size(path))

    def metadata(self, path: str) -> FileMetadata:
        if not tf.io.gfile.exists(path):
            raise BeamIOError("Metadata operation failed", {path: FileNotFoundError(path)})
        stat = tf.io.gfile.stat(path)
        return FileMetadata(path, stat.length, stat.mtime_nsec / 1e9)

    def delete(self, paths: List[str]) -> None:
        for path in paths:
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)
