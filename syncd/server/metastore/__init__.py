"""Metadata stores: users, devices, namespaces, the journal, chunk ownership."""

from syncd.server.metastore.base import (
    CommitOp,
    CommitResult,
    Device,
    Entry,
    InvalidCommit,
    MetaStore,
    MetaStoreUnavailable,
    Namespace,
    NamespaceMoving,
    User,
    open_metastore,
)

__all__ = [
    "CommitOp",
    "CommitResult",
    "Device",
    "Entry",
    "InvalidCommit",
    "MetaStore",
    "MetaStoreUnavailable",
    "Namespace",
    "NamespaceMoving",
    "User",
    "open_metastore",
]
