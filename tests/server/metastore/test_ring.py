"""The consistent-hash ring: balance, stability, and minimal movement when a node joins."""

from __future__ import annotations

from collections import Counter

import pytest

from syncd.server.metastore.ring import HashRing, key_hash, namespace_key

KEYS = [namespace_key(i) for i in range(20_000)]


def test_keys_hash_with_xxh3_64():
    import xxhash

    assert key_hash("ns:1") == xxhash.xxh3_64_intdigest(b"ns:1")
    assert 0 <= key_hash("x") < 2**64


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_keys_spread_evenly(n):
    ring = HashRing(f"shard{i}" for i in range(n))
    counts = Counter(ring.node_for(k) for k in KEYS)
    assert set(counts) == set(ring.nodes)
    fair = len(KEYS) / n
    assert all(0.8 * fair <= c <= 1.2 * fair for c in counts.values()), counts


def test_the_same_nodes_give_the_same_placement_in_any_order():
    a = HashRing(["shard0", "shard1", "shard2"])
    b = HashRing(["shard2", "shard0", "shard1"])
    assert all(a.node_for(k) == b.node_for(k) for k in KEYS)


@pytest.mark.parametrize("n", [1, 3, 4, 7])
def test_adding_a_node_moves_about_one_in_n_plus_one_all_to_it(n):
    old = HashRing(f"shard{i}" for i in range(n))
    new = old.with_node("shard-new")
    moved = [k for k in KEYS if old.node_for(k) != new.node_for(k)]
    assert all(new.node_for(k) == "shard-new" for k in moved)
    share = len(moved) / len(KEYS)
    assert 0.75 / (n + 1) <= share <= 1.25 / (n + 1), share


def test_a_ring_needs_nodes():
    with pytest.raises(ValueError):
        HashRing([])
    with pytest.raises(ValueError):
        HashRing(["a"], vnodes=0)
