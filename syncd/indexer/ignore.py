"""What not to sync: `.syncignore` (gitignore syntax) over built-in defaults.

Precedence, checked for the path and then for each folder above it (as in git, nothing
inside an ignored folder can be re-included):

1. always ignored: the client's state folder `/.syncd` and macOS `Icon\\r` files;
2. never ignored: `/.syncignore` itself (it is synced like any file);
3. the last `.syncignore` pattern that matches decides (a `!pattern` re-includes, also
   a default such as `!*~`);
4. otherwise the built-in DEFAULTS below: files editors and operating systems create
   and delete behind the user's back, which no other device wants.

Matching cost matters (100,000 paths per full scan): patterns that apply to a bare
name are joined into one regex tested on the name alone, and pathspec's per-pattern
check runs only for a path that some pattern may match.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from pathspec import GitIgnoreSpec

__all__ = ["DEFAULTS", "IGNORE_FILE", "STATE_DIR", "Ignore"]

IGNORE_FILE = ".syncignore"
STATE_DIR = ".syncd"

DEFAULTS: tuple[str, ...] = (
    # vim: swap files .name.swp (then .swo, .swn ... .swa), the .swx probe, backups name~
    ".*.sw[a-px]",
    "*.swp",
    "*~",
    # emacs: auto-save #name#, lock .#name (a dangling symlink), backups name~ (above)
    "\\#*#",
    ".#*",
    # Kate / KWrite swap files
    "*.kate-swp",
    # JetBrains IDEs' "safe write"
    "*___jb_tmp___",
    "*___jb_old___",
    # gedit and other GIO programs' atomic save
    ".goutputstream-*",
    # LibreOffice: lock files .~lock.name#; save-time temporaries luXXXX.tmp
    ".~lock.*#",
    "lu*.tmp",
    # Microsoft Office: owner files ~$name.docx, ~WRL0001.tmp, ABCD1234.tmp while saving
    "~$*",
    "~*.tmp",
    "[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F].tmp",
    # macOS
    ".DS_Store",
    "._*",
    "/.Spotlight-V100/",
    "/.Trashes/",
    "/.fseventsd/",
    "/.TemporaryItems/",
    "/.DocumentRevisions-V100/",
    # Windows
    "[Tt]humbs.db",
    "ehthumbs.db",
    "[Dd]esktop.ini",
    "/$RECYCLE.BIN/",
    "/System Volume Information/",
    # Linux: per-user trash on removable drives, FUSE and NFS placeholders of open files
    ".Trash-*",
    ".fuse_hidden*",
    ".nfs[0-9a-f][0-9a-f][0-9a-f][0-9a-f]*",
)

_BASENAME_PREFIX = "^(?:.+/)?"
_DIR_GROUP = "(?P<ps_d>/)"


class _Rules:
    """One gitignore pattern list with a fast "may anything match?" prefilter."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.spec = GitIgnoreSpec.from_lines(list(lines))
        on_name: list[str] = []
        on_path: list[str] = []
        for pattern in self.spec.patterns:
            regex = getattr(pattern, "regex", None)
            if regex is None:
                continue
            source = regex.pattern.replace(_DIR_GROUP, "(?:/)")
            rest = source.removeprefix(_BASENAME_PREFIX)
            if rest != source and "/" not in rest.replace("[^/]", "").replace("(?:/)", ""):
                on_name.append(f"(?:{rest})")
            else:
                on_path.append(f"(?:{source})")
        self.on_name = re.compile("|".join(on_name)) if on_name else None
        self.on_path = re.compile("|".join(on_path)) if on_path else None

    def decide(self, path: str, name: str) -> bool | None:
        """True: ignore, False: include (a `!` pattern), None: no pattern matches.

        `path` and `name` end with '/' for a folder.
        """
        if (self.on_name is None or self.on_name.match(name) is None) and (
            self.on_path is None or self.on_path.match(path) is None
        ):
            return None
        return self.spec.check_file(path).include


class Ignore:
    """Decides whether a sync path is ignored; `reload()` picks up `.syncignore` edits."""

    def __init__(self, lines: Iterable[str] = (), *, root: Path | None = None) -> None:
        self.root = root
        self.problem: str | None = None  # why .syncignore could not be read, if so
        self._defaults = _Rules(DEFAULTS)
        self._user = _Rules(lines)
        self._stamp: tuple[int, int, int] | None = None
        self._dirs: dict[str, bool] = {}

    @classmethod
    def from_root(cls, root: Path | str) -> Ignore:
        """Defaults plus `<root>/.syncignore` if it exists."""
        ignore = cls(root=Path(root))
        ignore.reload()
        return ignore

    def reload(self) -> bool:
        """Re-read `.syncignore` if it changed since it was read; True if it did."""
        if self.root is None:
            return False
        path = self.root / IGNORE_FILE
        try:
            st = os.stat(path)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            return self._set([], None, f"cannot read {IGNORE_FILE}: {exc.strerror}")
        else:
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp and self.problem is None:
            return False
        if stamp is None:
            return self._set([], None, None)
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            return self._set([], None, f"cannot read {IGNORE_FILE}: {exc.strerror}")
        return self._set(text.splitlines(), stamp, None)

    def _set(
        self, lines: list[str], stamp: tuple[int, int, int] | None, problem: str | None
    ) -> bool:
        self._user = _Rules(lines)
        self._stamp = stamp
        self.problem = problem
        self._dirs.clear()
        return True

    def ignored(self, path: str, is_dir: bool) -> bool:
        """True if the sync path (relative, '/'-separated) must not be synced."""
        if path == IGNORE_FILE:
            return False
        head, _, name = path.rpartition("/")
        if head and self._dir_ignored(head):
            return True
        return self._self_ignored(path, name, is_dir)

    def _dir_ignored(self, folder: str) -> bool:
        cached = self._dirs.get(folder)
        if cached is None:
            head, _, name = folder.rpartition("/")
            cached = (bool(head) and self._dir_ignored(head)) or self._self_ignored(
                folder, name, True
            )
            self._dirs[folder] = cached
        return cached

    def _self_ignored(self, path: str, name: str, is_dir: bool) -> bool:
        if path == STATE_DIR or name == "Icon\r":
            return True
        if is_dir:
            path, name = path + "/", name + "/"
        decided = self._user.decide(path, name)
        if decided is None:
            decided = self._defaults.decide(path, name)
        return bool(decided)
