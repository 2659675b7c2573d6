"""The sync server: HTTP API, metadata journal, chunk store, notifier, auth."""
