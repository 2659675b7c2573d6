"""Small helpers for server tests: chunk ids, uploads and commits over real HTTP."""

from __future__ import annotations

import blake3

from syncd.wire import BATCH_CONTENT_TYPE, encode_frames
from tests.support.server import Session


def cid(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def put(s: Session, data: bytes) -> str:
    chunk_id = cid(data)
    r = s.client.put(s.ns_url(f"chunks/{chunk_id}"), content=data)
    assert r.status_code == 200, r.text
    return chunk_id


def put_batch(s: Session, chunks: list[bytes]) -> list[str]:
    body = encode_frames([(cid(c), c) for c in chunks])
    r = s.client.post(
        s.ns_url("chunks"), content=body, headers={"Content-Type": BATCH_CONTENT_TYPE}
    )
    assert r.status_code == 200, r.text
    return r.json()["stored"]


def commit_file(s: Session, path: str, chunks: list[bytes], parent_rev=None, **extra):
    for c in chunks:
        put(s, c)
    op = {
        "path": path,
        "action": "file",
        "parent_rev": parent_rev,
        "size": sum(len(c) for c in chunks),
        "blocks": [{"id": cid(c), "size": len(c)} for c in chunks],
        **extra,
    }
    return s.client.post(s.ns_url("commit"), json=op)
