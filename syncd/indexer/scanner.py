"""The walker: what is in the folder now, compared with what the index last saw (D8).

`scan()` is a function of (folder, previous local snapshot, ignore rules, chunk
function); it reads the disk and writes nothing, neither the folder nor the index.

Rules
- lstat only: a symlink is never followed (reported as a problem, never synced); the
  root itself may be a symlink, as the user chose it. A folder is opened with
  O_NOFOLLOW and a file's (st_dev, st_ino) is checked before it is read, both against
  what the parent's listing showed, so a folder swapped for a symlink mid-scan is
  never read through.
- A file is chunked only if its size, mtime_ns or inode differ from the snapshot.
  A path whose (inode, size, mtime_ns) equal those of any snapshot file reuses that
  file's blocks without reading: a rename (or hard link, or chmod) costs no chunking.
  Like every stat-based scanner (git, Syncthing), an in-place edit that keeps size and
  mtime_ns (two writes within one timestamp tick) goes unseen until the next change.
- A file whose size, mtime or inode moves while it is chunked is reported as changing
  and left out (neither changed nor removed), never half-committed (D7); its path is
  in `retry`: scan it again soon.
- Trouble that may pass (unreadable file, folder that cannot be listed, a file
  changing) keeps the snapshot's state for that path and everything below it: the
  scanner never reports a removal it has not seen.
- Names: an undecodable (non-UTF-8) name is a problem. A name not in NFC form is synced
  under its NFC path only if that NFC path reaches the same file (normalization-
  insensitive filesystems such as APFS, where every later open by NFC path works);
  otherwise (ext4 and other byte-exact filesystems, or an NFC twin in the same folder)
  it is a problem "rename it": the executor only ever opens sync paths.
- Folders are states too (kind "dir", size and mtime 0: a folder's mtime moves with
  every child and carries nothing worth syncing). The root is not a state. Ignored
  paths and everything below them are neither states nor problems.
- Problem keys are the relative path as text; undecodable bytes appear as \\xNN.
"""

from __future__ import annotations

import bisect
import errno
import os
import stat
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from syncd.errors import FatalError, FileError, InvalidPath
from syncd.indexer.ignore import IGNORE_FILE, Ignore
from syncd.indexer.state import Block, FileState
from syncd.paths import parent_of, validate_path

if TYPE_CHECKING:
    from syncd.chunker import ChunkParams

__all__ = ["ChunkFn", "ChunkLike", "MappingSnapshot", "ScanResult", "Snapshot", "scan"]

CHANGING = "changing while being read; will retry"
NOT_NFC = "name is not in Unicode NFC form; rename it to sync it"
NFC_TWIN = "name is not in Unicode NFC form and its NFC form names another entry"
UNDECODABLE = "name is not valid UTF-8"
SYMLINK = "symbolic link: not followed, not synced"


class ChunkLike(Protocol):
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def id(self) -> str: ...


ChunkFn = Callable[[Path, Any], Sequence[ChunkLike]]


class Snapshot(Protocol):
    """The previous local tree, as the scanner asks for it: a dict of 100,000 states
    (`MappingSnapshot`) for a full scan, or queries on the index for a partial one."""

    def get(self, path: str) -> FileState | None: ...
    def __contains__(self, path: object) -> bool: ...
    def within(self, scope: str) -> Iterable[str]:
        """`scope` (if it is a state) and every path below it; '' is every path."""
        ...

    def donor(self, inode: int, size: int, mtime_ns: int) -> FileState | None:
        """A file with this (inode, size, mtime_ns), whose blocks a new path may reuse."""
        ...


class MappingSnapshot:
    """A `Snapshot` over a dict of states by path."""

    def __init__(self, states: Mapping[str, FileState]) -> None:
        self._states = states
        self._keys: list[str] | None = None
        self._donors: dict[tuple[int, int, int], FileState] | None = None

    def get(self, path: str) -> FileState | None:
        return self._states.get(path)

    def __contains__(self, path: object) -> bool:
        return path in self._states

    def within(self, scope: str) -> Iterable[str]:
        if scope == "":
            return self._states.keys()
        if self._keys is None:
            self._keys = sorted(self._states)
        lo = bisect.bisect_left(self._keys, scope + "/")
        hi = bisect.bisect_left(self._keys, scope + "0")  # '/' sorts right before '0'
        below = self._keys[lo:hi]
        return [scope, *below] if scope in self._states else below

    def donor(self, inode: int, size: int, mtime_ns: int) -> FileState | None:
        if self._donors is None:
            self._donors = {
                (s.inode, s.size, s.mtime_ns): s
                for s in self._states.values()
                if s.kind == "file" and s.inode is not None
            }
        return self._donors.get((inode, size, mtime_ns))


_Ident = tuple[int, int]  # (st_dev, st_ino)


def _real_chunk_file(path: Path, params: ChunkParams) -> Sequence[ChunkLike]:
    from syncd.chunker import chunk_file  # imported late: the chunker may be absent in tests

    return chunk_file(path, params)


@dataclass
class ScanResult:
    changed: dict[str, FileState] = field(default_factory=dict)  # new or changed states
    removed: set[str] = field(default_factory=set)  # snapshot paths that are gone
    problems: dict[str, str] = field(default_factory=dict)  # path -> why it is not synced
    retry: set[str] = field(default_factory=set)  # files changing while read: rescan soon


def scan(
    root: Path | str,
    snapshot: Snapshot | Mapping[str, FileState],
    ignore: Ignore,
    params: ChunkParams,
    chunk_fn: ChunkFn | None = None,
    only: Iterable[str] | None = None,
) -> ScanResult:
    """Compare the folder with `snapshot` (the index's local tree: a dict by path, or
    any `Snapshot`, e.g. `Index.local_snapshot()` for a partial rescan).

    `only`: rescan just these relative paths (a folder with its subtree), e.g. the
    watcher's dirty set; missing ancestors are picked up too. '' or `.syncignore`
    among them means a full scan (new ignore rules change what is in the tree).
    Raises FatalError if the root is not a folder that can be listed.
    """
    if isinstance(snapshot, Mapping):
        snapshot = MappingSnapshot(snapshot)
    scanner = _Scanner(Path(root), snapshot, ignore, params, chunk_fn or _real_chunk_file)
    return scanner.run(None if only is None else set(only))


def _display(path: str) -> str:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


class _Scanner:
    def __init__(
        self,
        root: Path,
        snapshot: Snapshot,
        ignore: Ignore,
        params: ChunkParams,
        chunk_fn: ChunkFn,
    ) -> None:
        self.root = os.path.abspath(root)
        self.snapshot = snapshot
        self.ignore = ignore
        self.params = params
        self.chunk_fn = chunk_fn
        self.seen: dict[str, FileState] = {}  # every state found, changed or not
        self.pending: dict[str, tuple[str, _Ident]] = {}  # files to (re)chunk: path -> where
        self.held: set[str] = set()  # keep the snapshot at and below these paths
        self.scopes: set[str] = set()  # subtrees whose every path was looked at
        self.out = ScanResult()

    # -- driver ------------------------------------------------------------------------
    def run(self, only: set[str] | None) -> ScanResult:
        try:
            st = os.stat(self.root)
        except OSError as exc:
            raise FatalError(f"sync folder {self.root}: {_reason(exc)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise FatalError(f"sync folder {self.root} is not a folder")
        targets = None if only is None else _targets(only)
        if targets is None:
            self.scopes.add("")
            self._walk(self.root, "", None)
            if self.ignore.problem:
                self.out.problems[IGNORE_FILE] = self.ignore.problem
        else:
            for target in targets:
                self._scan_one(target)
        self._chunk_pending()
        self._settle()
        return self.out

    def _scan_one(self, target: str) -> None:
        """Rescan one path, checking each folder on the way down is the real folder."""
        parent_abs, parent_sync, parent_id = self.root, "", None
        parts = target.split("/")
        for i, name in enumerate(parts):
            abs_path = os.path.join(parent_abs, name)
            prefix = unicodedata.normalize("NFC", "/".join(parts[: i + 1]))
            try:
                st = _lstat_in(parent_abs, parent_id, name)
            except (FileNotFoundError, NotADirectoryError):
                self.scopes.add(prefix)
                return
            except _Replaced:
                self.seen.pop(parent_sync, None)
                self._changing(parent_sync)
                return
            except OSError as exc:
                self._problem(prefix, f"cannot read: {_reason(exc)}", hold=True)
                return
            path = self._entry(parent_abs, parent_sync, name, st, _lister(parent_abs))
            if path is None or not stat.S_ISDIR(st.st_mode):
                self.scopes.add(path or prefix)
                return
            if i == len(parts) - 1:
                self.scopes.add(path)
                self._walk(abs_path, path, (st.st_dev, st.st_ino))
                return
            parent_abs, parent_sync, parent_id = abs_path, path, (st.st_dev, st.st_ino)

    # -- walking -----------------------------------------------------------------------
    def _walk(self, top_abs: str, top_sync: str, top_id: _Ident | None) -> None:
        """List a folder and everything below it; `top_id`: (st_dev, st_ino) expected."""
        stack = [(top_abs, top_sync, top_id)]
        while stack:
            abs_dir, sync_dir, ident = stack.pop()
            try:
                entries = _list_dir(abs_dir, ident)
            except (FileNotFoundError, NotADirectoryError):
                if not sync_dir:
                    raise FatalError(f"the sync folder {self.root} disappeared") from None
                self.seen.pop(sync_dir, None)  # gone since its parent was listed
                continue
            except _Replaced:  # replaced (maybe by a symlink) since it was listed
                self.seen.pop(sync_dir, None)
                self._changing(sync_dir)
                continue
            except OSError as exc:
                if not sync_dir:
                    raise FatalError(f"cannot list the sync folder: {_reason(exc)}") from None
                self._problem(sync_dir, f"cannot list folder: {_reason(exc)}", hold=True)
                continue
            names = {name for name, _ in entries}
            for name, st in entries:
                if isinstance(st, OSError):
                    path = _join(sync_dir, name)
                    self._problem(path, f"cannot read: {_reason(st)}", hold=True)
                    continue
                path = self._entry(abs_dir, sync_dir, name, st, lambda n=names: n)
                if path is not None and stat.S_ISDIR(st.st_mode):
                    child = os.path.join(abs_dir, name)
                    stack.append((child, path, (st.st_dev, st.st_ino)))

    def _entry(
        self,
        parent_abs: str,
        parent_sync: str,
        name: str,
        st: os.stat_result,
        siblings: Callable[[], set[str]],
    ) -> str | None:
        """Classify one directory entry; returns its sync path if it is a state."""
        mode = st.st_mode
        is_dir = stat.S_ISDIR(mode)
        nfc = unicodedata.normalize("NFC", name)
        path = _join(parent_sync, nfc)
        if self.ignore.ignored(path, is_dir):
            return None
        problem = self._name_problem(parent_abs, name, nfc, st, siblings)
        if problem is None and path not in self.snapshot:  # snapshot paths were validated
            try:
                validate_path(path)
            except InvalidPath as exc:
                problem = exc.reason
        if problem is not None:
            self._problem(_join(parent_sync, name), problem)
            return None
        if is_dir:
            self.seen[path] = FileState(path, "dir", 0, mode & 0o777, 0, (), None, st.st_ino)
            return path
        if stat.S_ISREG(mode):
            old = self.snapshot.get(path)
            if (
                old is not None
                and old.kind == "file"
                and old.size == st.st_size
                and old.mtime_ns == st.st_mtime_ns
                and old.inode == st.st_ino
                and old.mode == mode & 0o777
            ):
                self.seen[path] = old
            else:
                self.pending[path] = (os.path.join(parent_abs, name), (st.st_dev, st.st_ino))
            return path
        self._problem(path, SYMLINK if stat.S_ISLNK(mode) else _special_kind(mode))
        return None

    def _name_problem(
        self,
        parent_abs: str,
        name: str,
        nfc: str,
        st: os.stat_result,
        siblings: Callable[[], set[str]],
    ) -> str | None:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return UNDECODABLE
        if nfc == name:
            return None
        if nfc in siblings():
            return NFC_TWIN
        try:
            twin = os.lstat(os.path.join(parent_abs, nfc))
        except OSError:
            return NOT_NFC
        if (twin.st_dev, twin.st_ino) != (st.st_dev, st.st_ino):
            return NOT_NFC
        return None  # the filesystem maps the NFC name to this very entry

    # -- chunking ----------------------------------------------------------------------
    def _chunk_pending(self) -> None:
        if not self.pending:
            return
        for path, (abs_path, ident) in self.pending.items():
            try:
                before = os.lstat(abs_path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._problem(path, f"cannot read: {_reason(exc)}", hold=True)
                continue
            if not stat.S_ISREG(before.st_mode) or (before.st_dev, before.st_ino) != ident:
                self._changing(path)  # replaced since its folder was listed
                continue
            donor = self.snapshot.donor(before.st_ino, before.st_size, before.st_mtime_ns)
            blocks = donor.blocks if donor is not None else self._chunk(path, abs_path, before)
            if blocks is not None:
                self.seen[path] = FileState(
                    path,
                    "file",
                    before.st_size,
                    before.st_mode & 0o777,
                    before.st_mtime_ns,
                    blocks,
                    None,
                    before.st_ino,
                )

    def _chunk(self, path: str, abs_path: str, before: os.stat_result) -> tuple[Block, ...] | None:
        failure: str | None = None
        refs: Sequence[ChunkLike] = ()
        try:
            refs = self.chunk_fn(Path(abs_path), self.params)
        except FileError as exc:
            failure = exc.reason
        except OSError as exc:
            failure = f"cannot read: {_reason(exc)}"
        try:
            after = os.lstat(abs_path)
        except FileNotFoundError:
            return None  # gone: not a state; a removal if the snapshot had it
        except OSError:
            after = None
        if failure is not None:
            self._problem(path, failure, hold=True)
            return None
        blocks = tuple([Block(r.id, r.length) for r in refs])
        if (
            after is None
            or (after.st_size, after.st_mtime_ns, after.st_ino)
            != (before.st_size, before.st_mtime_ns, before.st_ino)
            or sum(b.size for b in blocks) != before.st_size
        ):
            self._changing(path)
            return None
        return blocks

    # -- results -----------------------------------------------------------------------
    def _problem(self, path: str, reason: str, *, hold: bool = False) -> None:
        self.out.problems[_display(path)] = reason
        if hold:
            self.held.add(path)

    def _changing(self, path: str) -> None:
        self._problem(path, CHANGING, hold=True)
        self.out.retry.add(path)

    def _settle(self) -> None:
        snapshot = self.snapshot
        self.out.changed = {p: s for p, s in self.seen.items() if snapshot.get(p) != s}
        if "" in self.scopes:
            candidates: Iterable[str] = snapshot.within("")
        else:
            found: set[str] = set()
            for scope in self.scopes:
                found.update(snapshot.within(scope))
            candidates = found
        self.out.removed = {p for p in candidates if p not in self.seen and not self._is_held(p)}

    def _is_held(self, path: str) -> bool:
        if not self.held:
            return False
        while path:
            if path in self.held:
                return True
            path = parent_of(path)
        return False


class _Replaced(Exception):
    """A folder is no longer the one its parent's listing showed."""


_NOFOLLOW_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_FD_LISTING = os.scandir in os.supports_fd and hasattr(os, "O_NOFOLLOW")
_FD_LSTAT = os.stat in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")


def _open_dir(abs_dir: str, ident: _Ident) -> int:
    """A descriptor of the folder at `abs_dir` if it is still `ident`, never a symlink."""
    try:
        fd = os.open(abs_dir, _NOFOLLOW_DIR)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # now a symlink or a file
            raise _Replaced(abs_dir) from None
        raise
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != ident:
        os.close(fd)
        raise _Replaced(abs_dir)
    return fd


def _check_dir(abs_dir: str, ident: _Ident) -> None:
    """The fallback where descriptors cannot be listed: a racy but honest check."""
    st = os.lstat(abs_dir)
    if (st.st_dev, st.st_ino) != ident or not stat.S_ISDIR(st.st_mode):
        raise _Replaced(abs_dir)


def _list_dir(abs_dir: str, ident: _Ident | None) -> list[tuple[str, os.stat_result | OSError]]:
    """(name, lstat result or the error) of each entry, after checking the folder.

    `ident` is the folder's (st_dev, st_ino) from its parent's listing; the folder is
    opened without following a symlink and must still match, so a folder swapped for
    a symlink between the two steps is never listed through. Entries that vanish
    while listed are left out.
    """
    if ident is None or not _FD_LISTING:
        if ident is not None:
            _check_dir(abs_dir, ident)
        with os.scandir(abs_dir) as it:
            return _stats(it)
    fd = _open_dir(abs_dir, ident)
    try:
        with os.scandir(fd) as it:
            return _stats(it)  # while fd is open: DirEntry.stat() uses it
    finally:
        os.close(fd)


def _lstat_in(parent_abs: str, parent_id: _Ident | None, name: str) -> os.stat_result:
    """lstat of `name` inside a folder that must still be `parent_id` (None: the root)."""
    if parent_id is None or not _FD_LSTAT:
        if parent_id is not None:
            _check_dir(parent_abs, parent_id)
        return os.lstat(os.path.join(parent_abs, name))
    fd = _open_dir(parent_abs, parent_id)
    try:
        return os.lstat(name, dir_fd=fd)
    finally:
        os.close(fd)


def _stats(entries: Iterable[os.DirEntry[str]]) -> list[tuple[str, os.stat_result | OSError]]:
    out: list[tuple[str, os.stat_result | OSError]] = []
    for entry in entries:
        try:
            out.append((entry.name, entry.stat(follow_symlinks=False)))
        except FileNotFoundError:
            continue
        except OSError as exc:
            out.append((entry.name, exc))
    return out


def _lister(folder: str) -> Callable[[], set[str]]:
    def names() -> set[str]:
        try:
            return set(os.listdir(folder))
        except OSError:
            return set()

    return names


def _targets(only: set[str]) -> list[str] | None:
    """Normalized rescan targets, outermost first; None: scan everything."""
    cleaned: set[str] = set()
    for raw in only:
        parts = [p for p in raw.replace(os.sep, "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            continue  # never a sync path; never look outside the folder
        if not parts or parts == [IGNORE_FILE]:
            return None
        cleaned.add("/".join(parts))
    out = []
    for path in sorted(cleaned):
        head = parent_of(path)
        while head and head not in cleaned:
            head = parent_of(head)
        if not head:
            out.append(path)
    return out
