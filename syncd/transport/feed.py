"""The change feed: a thread holding a long-poll open and handing entries on.

It never applies anything: it passes pages of journal entries to a callback and reports
when the server goes away and comes back. Offline periods back off with jitter.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from syncd.errors import RequestRejected, TransportError
from syncd.transport.client import ChangesPage, ServerClient
from syncd.transport.retry import Backoff

log = logging.getLogger("syncd.feed")


class ChangeFeed:
    def __init__(
        self,
        client: ServerClient,
        ns: int,
        cursor: int,
        on_page: Callable[[ChangesPage], None],
        on_error: Callable[[TransportError, float], None],
        *,
        poll_timeout: float = 60.0,
        backoff: Backoff | None = None,
        peek: bool = False,
    ) -> None:
        """With `peek`, pages carry no entries, only the journal's new end: for a reader
        that pulls the entries itself (each entry then crosses the wire once)."""
        self._client = client
        self._ns = ns
        self.cursor = cursor
        self._on_page = on_page
        self._on_error = on_error
        self._poll_timeout = poll_timeout
        self._peek = peek
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syncd-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def reset(self, cursor: int) -> None:
        """Resume from `cursor` (after a resync)."""
        self.cursor = cursor

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            sent = self.cursor
            try:
                page = self._client.changes(
                    self._ns, sent, timeout=self._poll_timeout, peek=self._peek
                )
            except TransportError as exc:
                if isinstance(exc, RequestRejected) and exc.status == 410:
                    # the server's journal is behind our cursor (restored from a backup):
                    # follow it from the start; the sync loop resyncs its own trees
                    self.cursor = 0
                    self._on_page(ChangesPage([], 0, False))
                    continue
                delay = self._backoff.delay(min(failures, 10))
                failures += 1
                self._on_error(exc, delay)
                if not exc.retryable:
                    delay = max(delay, 30.0)
                self._stop.wait(delay)
                continue
            except Exception:  # a bug must not kill the feed silently
                log.exception("change feed failed")
                self._stop.wait(5)
                continue
            recovered, failures = failures > 0, 0
            # a peek carries no entries, only the journal's end: the reader pulls them once
            if page.entries or page.cursor != sent or recovered:
                self.cursor = page.cursor
                self._on_page(page)
