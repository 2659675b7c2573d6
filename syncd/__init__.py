"""syncd: free, Dropbox-class file sync — a client daemon and a sync server."""

__version__ = "0.1.0"
