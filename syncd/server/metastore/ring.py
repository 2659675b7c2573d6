"""A consistent-hash ring with virtual nodes and XXH3-64 keys (pure; no I/O).

Each node owns `vnodes` points on a 64-bit circle; a key belongs to the first point at
or after its own hash (wrapping round). Adding a node takes over only the arcs its new
points cut, about 1/(N+1) of the keys, all of them moving to the new node (D2: XXH3 is
for placement, never for naming content).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import xxhash

DEFAULT_VNODES = 256


def key_hash(key: str) -> int:
    return xxhash.xxh3_64_intdigest(key.encode())


class HashRing:
    def __init__(self, nodes: Iterable[str], vnodes: int = DEFAULT_VNODES) -> None:
        self.nodes = tuple(dict.fromkeys(nodes))
        if not self.nodes:
            raise ValueError("a hash ring needs at least one node")
        if vnodes < 1:
            raise ValueError("vnodes must be at least 1")
        self.vnodes = vnodes
        points = sorted(
            (key_hash(f"{node}#{i}"), node) for node in self.nodes for i in range(vnodes)
        )
        self._hashes = [h for h, _ in points]
        self._owners = [node for _, node in points]

    def node_for(self, key: str) -> str:
        i = bisect.bisect_left(self._hashes, key_hash(key))
        return self._owners[i % len(self._owners)]

    def with_node(self, node: str) -> HashRing:
        return HashRing((*self.nodes, node), self.vnodes)


def namespace_key(ns: int) -> str:
    """The ring key of a namespace."""
    return f"ns:{ns}"
