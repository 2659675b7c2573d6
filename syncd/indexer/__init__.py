"""The client's local SQLite index: local, remote and synced trees and the cursor (D6)."""

from syncd.indexer.db import Index, Tree
from syncd.indexer.ignore import Ignore
from syncd.indexer.scanner import ScanResult, scan
from syncd.indexer.state import Block, FileState, Kind

__all__ = ["Block", "FileState", "Ignore", "Index", "Kind", "ScanResult", "Tree", "scan"]
