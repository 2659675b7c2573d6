"""The client's local SQLite index: local, remote and synced trees and the cursor (D6)."""
