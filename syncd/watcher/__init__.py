"""Filesystem watching: events mark paths dirty; a debounce coalesces bursts (D8)."""

from syncd.watcher.debounce import Batch, Clock, Debouncer, MonotonicClock
from syncd.watcher.watch import Watcher

__all__ = ["Batch", "Clock", "Debouncer", "MonotonicClock", "Watcher"]
