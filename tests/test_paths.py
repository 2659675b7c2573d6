"""Unit tests of sync-path validation (D10), shared by client and server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.errors import InvalidPath
from syncd.paths import ext_of, is_under, is_valid_path, name_of, parent_of, validate_path


@pytest.mark.parametrize(
    "path",
    ["a", "a/b/c.txt", "café", "日本/語", ".hidden", "a b/c d", "x" * 255, "a.", "...", "a..b"],
)
def test_valid(path):
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/abs", "absolute"),
        ("a/../b", "'..'"),
        ("./a", "'.'"),
        ("a//b", "empty path component"),
        ("a/", "empty path component"),
        ("a\x00", "U+0000"),
        ("a\nb", "U+000A"),
        ("a\\b", "U+005C"),
        ("cafe\u0301", "NFC"),
        ("x" * 256, "longer than 255"),
        ("\udcff", "surrogate"),
        ("", "empty"),
    ],
)
def test_invalid_says_why(path, why):
    with pytest.raises(InvalidPath) as err:
        validate_path(path)
    assert why in str(err.value)


def test_root_only_when_allowed():
    assert validate_path("", allow_root=True) == ""
    assert not is_valid_path(None)
    assert not is_valid_path(b"bytes")


def test_helpers():
    assert parent_of("a/b/c") == "a/b" and parent_of("a") == ""
    assert name_of("a/b.txt") == "b.txt"
    assert ext_of("a/b.tar.gz") == "gz" and ext_of(".bashrc") == "" and ext_of("noext") == ""
    assert is_under("a/b", "a") and is_under("a", "a") and not is_under("ab", "a")
    assert is_under("anything", "")


@given(st.text(max_size=50))
def test_validation_never_crashes_and_accepted_paths_are_safe(text):
    try:
        path = validate_path(text)
    except InvalidPath:
        return
    parts = path.split("/")
    assert ".." not in parts and "" not in parts and not path.startswith("/")
