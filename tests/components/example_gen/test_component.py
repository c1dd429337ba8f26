"""The chunked ExampleGen reader: the same examples as reading each split whole, as a multiset, in bounded pieces."""
import collections
import gzip

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from components.common.errors import DataError
from components.example_gen import component, records
from components.example_gen.component import IDX_PATTERNS, locate_split
from tests.idx_files import synthetic, write_split


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("count", [1, 9, 10, 23])
def test_chunks_give_the_examples_of_the_whole_split(tmp_path, monkeypatch, gz, count):
    monkeypatch.setattr(component, "CHUNK_RECORDS", 10)
    images, labels = synthetic(count, seed=count)
    images[-1] = images[0]  # a duplicate record: a multiset, not a set
    labels[-1] = labels[0]
    write_split(str(tmp_path), "train", images, labels, gz=gz)
    source = locate_split(str(tmp_path), "train", IDX_PATTERNS["train"])
    chunks = list(source.chunks(str(tmp_path / "scratch")))
    assert [(c.start, c.stop) for c in chunks] == [(s, min(s + 10, count)) for s in range(0, count, 10)]
    whole = list(records.serialize_examples(images, labels))
    from_chunks = [record for chunk in chunks for record in chunk.examples()]
    assert collections.Counter(from_chunks) == collections.Counter(whole)
    with beam.Pipeline() as pipeline:  # the ExampleGen's own transform, on Beam's DirectRunner
        assert_that(pipeline | component._ReadSplit(source, str(tmp_path / "scratch")), equal_to(whole))  # noqa: SLF001


def test_a_gzipped_split_is_decompressed_once(tmp_path, monkeypatch):
    monkeypatch.setattr(component, "CHUNK_RECORDS", 10)
    images, labels = synthetic(45)
    write_split(str(tmp_path), "train", images, labels, gz=True)
    decompressed = []  # what gzip's decompressing reader returns, for reads and seeks alike
    read = gzip._GzipReader.read  # noqa: SLF001
    monkeypatch.setattr(gzip._GzipReader, "read", lambda self, *size: decompressed.append(len(data := read(self, *size))) or data)  # noqa: SLF001
    source = locate_split(str(tmp_path), "train", IDX_PATTERNS["train"])
    chunks = list(source.chunks(str(tmp_path / "scratch")))
    from_chunks = [record for chunk in chunks for record in chunk.examples()]
    assert len(chunks) == 5 and from_chunks == list(records.serialize_examples(images, labels))
    assert sum(decompressed) == 16 + 45 * 784 + 8 + 45  # each file's bytes once: images (header + pixels), labels


def test_a_truncated_gzipped_images_file_fails_the_plan_in_one_line(tmp_path):
    images, labels = synthetic(45)
    write_split(str(tmp_path), "train", images, labels, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-6])  # the stream's end (its checksum) cut off, while it is copied
    source = locate_split(str(tmp_path), "train", IDX_PATTERNS["train"])
    expected = r"train-images-idx3-ubyte\.gz: gzip data is corrupt or truncated .*; fetch the file again"
    with pytest.raises(DataError, match=expected):
        list(source.chunks(str(tmp_path / "scratch")))


def test_real_mnist_train_in_chunks(real_mnist, tmp_path):
    source = locate_split(real_mnist, "train", IDX_PATTERNS["train"])
    chunks = list(source.chunks(str(tmp_path)))
    assert len(chunks) == 6 and chunks[-1].stop == 60_000
    images, labels = source.read()
    third = list(chunks[2].examples())  # a range from the middle of the split (its decompressed copy)
    assert len(third) == 10_000
    assert third == list(records.serialize_examples(images[20_000:30_000], labels[20_000:30_000]))
