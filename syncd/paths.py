"""Validation of sync paths, shared by client and server (D10).

A sync path is relative, '/'-separated, NFC-normalized, made of non-empty components
other than '.' and '..', free of NUL, control characters and backslashes, and bounded
in length. The root folder is the empty string.
"""

from __future__ import annotations

import unicodedata

from syncd.errors import InvalidPath

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


def _bad_char(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F or ch == "\\"


def validate_path(path: object, *, allow_root: bool = False) -> str:
    """Return `path` if it is a valid sync path, else raise InvalidPath saying why."""
    if not isinstance(path, str):
        raise InvalidPath(repr(path), "a path must be a string")
    if path == "":
        if allow_root:
            return path
        raise InvalidPath(path, "empty path")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPath(path, "not valid Unicode (lone surrogate)") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidPath(path[:64] + "…", f"longer than {MAX_PATH_BYTES} bytes")
    if path.startswith("/"):
        raise InvalidPath(path, "absolute paths are not allowed")
    for ch in path:
        if _bad_char(ch):
            kind = "control character" if ord(ch) < 32 or ord(ch) == 127 else "character"
            raise InvalidPath(path, f"contains forbidden {kind} U+{ord(ch):04X}; rename it")
    if unicodedata.normalize("NFC", path) != path:
        raise InvalidPath(path, "not in Unicode NFC form")
    for part in path.split("/"):
        if part == "":
            raise InvalidPath(path, "empty path component (leading, trailing or double '/')")
        if part in (".", ".."):
            raise InvalidPath(path, f"'{part}' components are not allowed")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidPath(path, f"a component is longer than {MAX_NAME_BYTES} bytes")
    return path


def is_valid_path(path: object) -> bool:
    try:
        validate_path(path)
    except InvalidPath:
        return False
    return True


def parent_of(path: str) -> str:
    """'a/b/c' -> 'a/b'; 'a' -> '' (the root)."""
    head, _, _ = path.rpartition("/")
    return head


def name_of(path: str) -> str:
    return path.rpartition("/")[2]


def ext_of(path: str) -> str:
    """The extension without the dot, lower-cased as written: 'a/b.tar.gz' -> 'gz'."""
    name = name_of(path)
    stem, dot, ext = name.rpartition(".")
    return ext if dot and stem else ""


def is_under(path: str, folder: str) -> bool:
    """True if `path` is `folder` or inside it ('' is the root, holding everything)."""
    return folder == "" or path == folder or path.startswith(folder + "/")
