"""The chunker: tiling, determinism, streaming equivalence, boundary stability, errors."""

from __future__ import annotations

import io
import random
import tracemalloc

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.chunker import (
    ChunkParams,
    chunk_bytes,
    chunk_file,
    chunk_file_keeping,
    chunk_stream,
    iter_chunks_stream,
)
from syncd.chunker import core as core_mod
from syncd.errors import FileError

SMALL = ChunkParams(min_size=256, avg_size=1024, max_size=4096)


def rand(n: int, seed: int = 1234) -> bytes:
    return random.Random(seed).randbytes(n)


def check_tiling(data: bytes, refs, params: ChunkParams) -> None:
    offset = 0
    for i, ref in enumerate(refs):
        assert ref.offset == offset
        assert ref.length <= params.max_size
        if i < len(refs) - 1:
            assert ref.length >= params.min_size
        assert ref.id == blake3.blake3(data[ref.offset : ref.offset + ref.length]).hexdigest()
        offset += ref.length
    assert offset == len(data)


def test_empty_and_tiny_inputs(tmp_path):
    assert chunk_bytes(b"", SMALL) == []
    assert chunk_stream(io.BytesIO(b""), SMALL) == []
    (tmp_path / "empty").write_bytes(b"")
    assert chunk_file(tmp_path / "empty", SMALL) == []
    (tmp_path / "tiny").write_bytes(b"abc")
    (ref,) = chunk_file(tmp_path / "tiny", SMALL)
    assert (ref.offset, ref.length, ref.id) == (0, 3, blake3.blake3(b"abc").hexdigest())


def test_pinned_lengths_catch_a_change_of_parameters_or_gear_table():
    refs = chunk_bytes(rand(20_000), SMALL)
    lengths = [r.length for r in refs]
    assert sum(lengths) == 20_000
    assert lengths == PINNED_LENGTHS
    assert refs[0].id == blake3.blake3(rand(20_000)[: lengths[0]]).hexdigest()


# FastCDC 2020, NC=1, pyfastcdc's default gear table, min/avg/max 256/1024/4096.
PINNED_LENGTHS = [
    2706,
    1838,
    1488,
    751,
    432,
    1365,
    862,
    576,
    1647,
    1114,
    1485,
    1120,
    2953,
    1080,
    583,
]


def test_file_stream_and_bytes_agree_across_segment_edges(tmp_path, monkeypatch):
    monkeypatch.setattr(core_mod, "SEGMENT", 10_000)  # many segment edges
    monkeypatch.setattr(core_mod, "SMALL_INLINE", 9_000)  # both hashing paths, mixed
    data = rand(200_003, seed=7)
    (tmp_path / "f").write_bytes(data)
    a = chunk_bytes(data, SMALL)
    assert chunk_stream(io.BytesIO(data), SMALL) == a
    assert chunk_file(tmp_path / "f", SMALL) == a
    check_tiling(data, a, SMALL)
    got = b"".join(bytes(d) for _, d in iter_chunks_stream(io.BytesIO(data), SMALL))
    assert got == data


def test_a_file_chunked_whole_keeps_its_bytes_and_cuts_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(core_mod, "SEGMENT", 10_000)  # the bigger file crosses edges
    data = rand(50_001, seed=8)
    (tmp_path / "f").write_bytes(data)
    refs = chunk_file(tmp_path / "f", SMALL)
    assert chunk_file_keeping(tmp_path / "f", SMALL, 50_001) == (refs, data)
    assert chunk_file_keeping(tmp_path / "f", SMALL, 50_000) == (refs, None)  # too big
    (tmp_path / "empty").write_bytes(b"")
    assert chunk_file_keeping(tmp_path / "empty", SMALL, 10) == ([], b"")
    with pytest.raises(FileError):
        chunk_file_keeping(tmp_path / "missing", SMALL, 10)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=30_000))
def test_any_input_is_tiled_deterministically(data):
    refs = chunk_bytes(data, SMALL)
    check_tiling(data, refs, SMALL)
    assert chunk_bytes(data, SMALL) == refs


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    where=st.floats(0.2, 0.8),
    insert=st.binary(min_size=1, max_size=64),
    overwrite=st.booleans(),
)
def test_an_edit_changes_only_nearby_chunks(seed, where, insert, overwrite):
    data = rand(64_000, seed)
    at = int(len(data) * where)
    edited = data[:at] + insert + data[at + (len(insert) if overwrite else 0) :]
    before, after = chunk_bytes(data, SMALL), chunk_bytes(edited, SMALL)
    # every chunk ending before the edit is unchanged (FastCDC 2020 rolls two bytes a
    # step, so a cut exactly at the edit may look at the edited byte: keep a margin)
    head = [r for r in before if r.offset + r.length < at - 1]
    assert after[: len(head)] == head
    # the tail resynchronises: the file ends in the same chunk, and only a handful
    # of chunks around the edit are new (at most 9 over 3,000 seeded trials of ~50
    # chunks each; a cascade of short chunks can precede the resync point)
    assert after[-1].id == before[-1].id
    new = {r.id for r in after} - {r.id for r in before}
    assert len(new) <= 12
    assert sum(r.length for r in after if r.id in new) <= 12 * SMALL.avg_size + SMALL.max_size


def test_read_error_becomes_file_error(tmp_path):
    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            raise OSError(5, "Input/output error")

    with pytest.raises(OSError):
        chunk_stream(io.BufferedReader(Broken()), SMALL)
    with pytest.raises(FileError) as err:
        chunk_file(tmp_path / "missing", SMALL)
    assert "missing" in str(err.value)
    with pytest.raises(FileError):
        chunk_file(tmp_path, SMALL)  # a directory


def test_streams_in_bounded_memory(tmp_path):
    path = tmp_path / "big"
    with open(path, "wb") as f:
        for i in range(48):
            f.write(rand(1 << 20, seed=i))
    params = ChunkParams.from_avg(64 * 1024)
    tracemalloc.start()
    refs = chunk_file(path, params)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sum(r.length for r in refs) == 48 << 20
    assert peak < 24 << 20  # two or three segments in flight, never the whole 48 MiB


def test_params_are_validated_and_round_trip():
    p = ChunkParams.from_avg(65536)
    assert (p.min_size, p.avg_size, p.max_size) == (16384, 65536, 262144)
    assert ChunkParams.from_dict(p.to_dict()) == p
    for bad in [(10, 20, 30), (4096, 1024, 8192), (1024, 4096, 64 << 20)]:
        with pytest.raises(ValueError):
            ChunkParams(*bad)
    with pytest.raises(ValueError):
        ChunkParams.from_dict({"min": 1})
