"""Content-defined chunking: FastCDC 2020 boundaries, BLAKE3-256 chunk ids (D1, D2)."""
