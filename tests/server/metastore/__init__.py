"""Tests of the metadata stores: one conformance suite, the ring, PostgreSQL, resharding."""
