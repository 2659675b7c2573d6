"""Client transport: the HTTP client for the sync server (httpx)."""

from syncd.transport.client import ChangesPage, ServerClient
from syncd.transport.retry import Backoff, with_retries

__all__ = ["Backoff", "ChangesPage", "ServerClient", "with_retries"]
