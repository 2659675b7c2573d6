"""Filesystem watching: events mark paths dirty; a debounce coalesces bursts (D8)."""
