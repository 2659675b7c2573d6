"""Ignore rules: built-in defaults, .syncignore in gitignore syntax, reloading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.indexer.ignore import Ignore

EDITOR_AND_OS_DEBRIS = [
    "notes/.report.txt.swp",  # vim swap
    "notes/.report.txt.swo",
    "notes/.report.txt.swx",  # vim's probe
    "report.txt~",  # vim/emacs/nano backup
    "#report.txt#",  # emacs auto-save
    ".#report.txt",  # emacs lock
    "a/.~lock.budget.ods#",  # LibreOffice lock
    "lu12345abcd.tmp",  # LibreOffice save temp
    "~$budget.xlsx",  # MS Office owner file
    "~WRL0004.tmp",  # MS Word save temp
    "8A3F21C0.tmp",  # MS Office save temp
    "src/Main.java___jb_tmp___",  # JetBrains safe write
    "src/Main.java___jb_old___",
    ".goutputstream-XYZ123",  # gedit / GIO
    "x.kate-swp",
    ".DS_Store",
    "deep/er/.DS_Store",
    "._photo.jpg",  # AppleDouble
    "Thumbs.db",
    "desktop.ini",
    ".Trash-1000/files/x",
    ".fuse_hidden0000001a00000002",
    ".nfs000000000123abcd00000001",
    ".syncd/tmp/download.part",  # the client's own state folder
    "Icon\r",  # macOS custom folder icon
]

SYNCED = [
    "report.txt",
    ".syncignore",
    "notes/.hidden",
    "a/.syncd",  # only the root's state folder is special
    "movie.swf",
    "budget.tmp",  # a .tmp file a person named is theirs
    ".nfsrc",
    ".directory",
    "Icon",
    "README",
    "#hashtag",
]


@pytest.mark.parametrize("path", EDITOR_AND_OS_DEBRIS)
def test_defaults_ignore_debris(path):
    assert Ignore().ignored(path, is_dir=False)


@pytest.mark.parametrize("path", SYNCED)
def test_defaults_keep_real_files(path):
    assert not Ignore().ignored(path, is_dir=False)


def test_root_only_volume_folders():
    ig = Ignore()
    assert ig.ignored(".Spotlight-V100", is_dir=True)
    assert not ig.ignored("photos/.Spotlight-V100", is_dir=True)
    assert not ig.ignored(".Spotlight-V100", is_dir=False)


def test_gitignore_syntax():
    ig = Ignore(
        [
            "# build output",
            "build/",
            "*.log",
            "!keep.log",
            "/top.txt",
            "docs/*.pdf",
            "a/**/deep",
            r"\#literal",
            "",
        ]
    )
    assert ig.ignored("build", is_dir=True)
    assert not ig.ignored("build", is_dir=False)  # dir-only pattern
    assert ig.ignored("build/x.o", is_dir=False)
    assert ig.ignored("src/build/x.o", is_dir=False)
    assert ig.ignored("x/y.log", is_dir=False)
    assert not ig.ignored("x/keep.log", is_dir=False)
    assert ig.ignored("top.txt", is_dir=False)
    assert not ig.ignored("sub/top.txt", is_dir=False)
    assert ig.ignored("docs/a.pdf", is_dir=False)
    assert not ig.ignored("docs/sub/a.pdf", is_dir=False)
    assert ig.ignored("a/b/c/deep", is_dir=False)
    assert ig.ignored("#literal", is_dir=False)
    assert not ig.ignored("# build output", is_dir=False)


def test_nothing_inside_an_ignored_folder_comes_back():
    ig = Ignore(["cache/", "!cache/keep.txt"])
    assert ig.ignored("cache/keep.txt", is_dir=False)


def test_user_rules_can_reinclude_a_default():
    assert not Ignore(["!*~"]).ignored("notes~", is_dir=False)
    assert Ignore(["!*~"]).ignored(".DS_Store", is_dir=False)


def test_user_rules_cannot_hide_the_state_folder_or_themselves():
    ig = Ignore(["!.syncd", "!/.syncd/", ".*", ".syncignore"])
    assert ig.ignored(".syncd", is_dir=True)
    assert ig.ignored(".syncd/tmp/f", is_dir=False)
    assert not ig.ignored(".syncignore", is_dir=False)
    assert ig.ignored(".other", is_dir=False)
    assert ig.ignored("sub/.syncignore", is_dir=False)  # only the root's file is special


def test_from_root_and_reload(tmp_path: Path):
    rules = tmp_path / ".syncignore"
    ig = Ignore.from_root(tmp_path)
    assert not ig.ignored("x.log", is_dir=False)
    assert not ig.reload()

    rules.write_text("*.log\n")
    assert ig.reload()
    assert ig.ignored("x.log", is_dir=False)
    assert not ig.reload()

    rules.write_text("*.log\n*.bak\n")
    os.utime(rules, ns=(1, 1))  # a different stamp even on coarse clocks
    assert ig.reload()
    assert ig.ignored("x.bak", is_dir=False)

    rules.unlink()
    assert ig.reload()
    assert not ig.ignored("x.log", is_dir=False)


def test_reload_refreshes_folder_decisions(tmp_path: Path):
    ig = Ignore.from_root(tmp_path)
    assert not ig.ignored("out/a.txt", is_dir=False)  # caches "out" as not ignored
    (tmp_path / ".syncignore").write_text("out/\n")
    assert ig.reload()
    assert ig.ignored("out/a.txt", is_dir=False)


def test_unreadable_rules_fall_back_to_defaults(tmp_path: Path):
    (tmp_path / ".syncignore").mkdir()  # reading it fails (as root too)
    ig = Ignore.from_root(tmp_path)
    assert ig.problem is not None
    assert "cannot read .syncignore" in ig.problem
    assert ig.ignored(".DS_Store", is_dir=False)
    assert not ig.ignored("a.txt", is_dir=False)


def test_undecodable_rules_still_load(tmp_path: Path):
    (tmp_path / ".syncignore").write_bytes(b"*.log\n\xff\xfe.bin\n")
    ig = Ignore.from_root(tmp_path)
    assert ig.problem is None
    assert ig.ignored("x.log", is_dir=False)
