"""Client transport: the HTTP client for the sync server (httpx)."""
