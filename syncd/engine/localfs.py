"""LocalFS: the only code that writes into the sync folder (D7, D10).

Downloads go to a temp file in the folder's own state dir (same filesystem), each chunk
verified against its BLAKE3 id, made durable (an fsync each, or for a batch of small
files one syncfs of the filesystem after all are written: the same guarantee, that a
file is on disk before it is renamed in, for one flush instead of thousands), given its
mode and mtime, and renamed over the
target only if the target still matches what the index last saw (size, mtime, inode);
otherwise ConflictDetected is raised and the user's file is left untouched. No parent
component is ever a symlink: the folder is never written outside of.

Between the final check and the rename there is a window of microseconds in which an
application could still write the target; the next scan sees such a write (the inode
changed), and the version the user wrote just before it is on the server.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from syncd.durable import fsync_dir
from syncd.errors import FileError
from syncd.indexer.state import FileState


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()
HOLD_REPLACED = 8 * 1024 * 1024  # replaced files this big are freed in the background
_RELEASER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-release")
WRITE_BATCH = 4 * 1024 * 1024  # bytes per writev(2) of a download
WRITE_IOVECS = 512  # and at most this many chunks (Linux allows 1,024)


_UTIME_FD = os.utime in os.supports_fd


def _all_zero(data: bytes | memoryview) -> bool:
    """Whether a chunk is all zero bytes (written as a hole, not as data). The first
    byte settles it for almost every chunk that is not."""
    if data[:1] != b"\0":
        return False
    whole = data if isinstance(data, bytes) else data.tobytes()
    return whole.count(0) == len(whole)


def _hold(target: str, current: os.stat_result | None) -> int | None:
    """An fd of a big file about to be renamed over, or None (see `_release`)."""
    if current is None or not stat.S_ISREG(current.st_mode) or current.st_size < HOLD_REPLACED:
        return None
    try:
        return os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None


def _release(fd: int | None) -> None:
    """Close a held fd on a background thread. The close drops the replaced file's last
    reference, and the kernel frees its blocks and page cache then (tens of ms for
    100 MiB) instead of inside the rename, where the new version waited for it."""
    if fd is not None:
        _RELEASER.submit(os.close, fd)


class _GatherWriter:
    """Writes a file's chunks with one writev(2) per WRITE_BATCH bytes, not one write
    each: a 100 MiB file is ~25 system calls (and ~25 inotify events for the folder's
    own watcher) instead of ~1,300, with no copy into a buffer."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: list[bytes | memoryview] = []
        self.size = 0
        self.offset = 0
        self.hole_at_end = False

    def write(self, data: bytes | memoryview) -> None:
        self.hole_at_end = False
        self.pending.append(data)
        self.size += len(data)
        if self.size >= WRITE_BATCH or len(self.pending) >= WRITE_IOVECS:
            self._flush()

    def skip(self, size: int) -> None:
        self._flush()
        self.offset += size
        self.hole_at_end = size > 0
        os.lseek(self.fd, self.offset, os.SEEK_SET)

    def finish(self) -> None:
        """Flush; a file that ends in a hole is extended to where that hole ends (the
        file is new and empty at the start, so it needs no truncating otherwise)."""
        self._flush()
        if self.hole_at_end:
            os.ftruncate(self.fd, self.offset)

    def _flush(self) -> None:
        views = [memoryview(b) for b in self.pending if b]
        self.pending, self.offset, self.size = [], self.offset + self.size, 0
        while views:
            written = os.writev(self.fd, views)
            if written == 0:
                raise OSError(errno.EIO, "the disk accepted no bytes")
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if written:
                views[0] = views[0][written:]


class ConflictDetected(Exception):
    """The local path no longer matches what the plan expected; rescan and replan."""


DISK_FULL = "disk full"  # the reason a write failed for want of space


def os_reason(exc: OSError) -> str:
    """What a failed file operation tells the user (`DISK_FULL` for ENOSPC)."""
    if exc.errno == errno.ENOSPC:
        return DISK_FULL
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)


def _matches(st: os.stat_result | None, expect: FileState | None) -> bool:
    if expect is None:
        return st is None
    if st is None:
        return False
    if expect.kind == "dir":
        return stat.S_ISDIR(st.st_mode)
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_size == expect.size
        and st.st_mtime_ns == expect.mtime_ns
        and (expect.inode is None or st.st_ino == expect.inode)
    )


class LocalFS:
    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = Path(root)
        self.state_dir = Path(state_dir)
        self.tmp_dir = self.state_dir / "tmp"
        self.kept_dir = self.state_dir / "deleted"  # files a remote delete removed, a while

    # -- paths -------------------------------------------------------------------------
    def abspath(self, path: str) -> str:
        return os.path.join(self.root, *path.split("/"))

    def stat_state(self, path: str) -> os.stat_result | None:
        try:
            return os.lstat(self.abspath(path))
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None

    def exists(self, path: str) -> bool:
        return self.stat_state(path) is not None

    def _parents(self, path: str, *, create: bool) -> None:
        """Check (and create) each parent folder; refuse symlinks and non-folders."""
        parts = path.split("/")[:-1]
        current = str(self.root)
        for i, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                if not create:
                    return
                with contextlib.suppress(FileExistsError):  # a parallel writer made it
                    os.mkdir(current, 0o755)
                st = os.lstat(current)
            if not stat.S_ISDIR(st.st_mode):
                shown = "/".join(parts[: i + 1])
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a folder"
                raise FileError(path, f"parent {shown!r} is {kind}; not written")

    # -- writing -----------------------------------------------------------------------
    def write_file(
        self,
        path: str,
        state: FileState,
        chunks: Iterable[bytes | memoryview],
        expect: FileState | None,
        *,
        sync_dir: bool = True,
        verified: bool = False,
    ) -> FileState:
        """Write `state`'s content from `chunks` (in block order) atomically.

        `sync_dir=False` leaves the fsync of the folder (which makes the rename durable)
        to the caller, who may batch it over many files with `sync_dirs`. `verified`:
        see `stage_file`.
        """
        tmp_name = self.stage_file(path, state, chunks, durable=True, verified=verified)
        return self.place_file(path, state, tmp_name, expect, sync_dir=sync_dir)

    def stage_file(
        self,
        path: str,
        state: FileState,
        chunks: Iterable[bytes | memoryview],
        *,
        durable: bool,
        verified: bool = False,
    ) -> str:
        """Write and verify `state`'s content into a temp file in the state dir; its name.

        With `durable=False` the caller must make the staged data durable before placing
        it (`sync_staged`, one flush for a whole batch of files instead of one each).
        `verified=True` says each chunk's bytes were already checked against its id
        where they were read (`read_chunk`, the transport), so they are not hashed again
        here; their sizes still are.
        """
        tmp_name = None
        try:
            self.tmp_dir.mkdir(exist_ok=True)  # never recreates a vanished state dir
            fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="dl-")
            try:
                out = _GatherWriter(fd)
                blocks = iter(state.blocks)
                for data in chunks:
                    block = next(blocks, None)
                    if block is None or len(data) != block.size:
                        raise FileError(path, "download does not match its block list")
                    if not verified and blake3.blake3(data).hexdigest() != block.id:
                        raise FileError(path, f"chunk {block.id[:12]}… failed verification")
                    if _all_zero(data):
                        out.skip(block.size)  # a hole: sparse files stay sparse
                    else:
                        out.write(data)
                if next(blocks, None) is not None:
                    raise FileError(path, "download ended early")
                out.finish()  # the file ends where the last block ends, hole or not
                os.fchmod(fd, (state.mode & 0o777) | 0o600)
                if _UTIME_FD:  # no second lookup of the name
                    os.utime(fd, ns=(state.mtime_ns, state.mtime_ns))
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if not _UTIME_FD:
                os.utime(tmp_name, ns=(state.mtime_ns, state.mtime_ns))
            staged, tmp_name = tmp_name, None
            return staged
        except OSError as exc:
            raise FileError(path, os_reason(exc)) from None
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    def sync_staged(self, staged: Iterable[str]) -> None:
        """Make staged temp files durable: one syncfs(2) of the folder's filesystem where
        the platform has it (Linux), else an fsync of each. Raises OSError on failure."""
        if _SYNCFS is not None:
            fd = os.open(self.tmp_dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if _SYNCFS(fd) != 0:
                    raise OSError(ctypes.get_errno(), "syncfs failed")
            finally:
                os.close(fd)
            return
        for name in staged:
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def discard_staged(self, staged: Iterable[str]) -> None:
        for name in staged:
            with contextlib.suppress(OSError):
                os.unlink(name)

    def place_file(
        self,
        path: str,
        state: FileState,
        tmp_name: str,
        expect: FileState | None,
        *,
        sync_dir: bool = True,
    ) -> FileState:
        """Rename a durable staged file over `path` if the target still matches `expect`
        (else ConflictDetected, the user's file untouched); the staged file is consumed."""
        pending: str | None = tmp_name
        try:
            self._parents(path, create=True)
            target = self.abspath(path)
            current = self.stat_state(path)
            if not _matches(current, expect):
                raise ConflictDetected(path)
            if current is not None and stat.S_ISDIR(current.st_mode):
                self._remove_empty_folder(path, target)  # a folder that became a file
            held = _hold(target, current)
            try:
                os.replace(tmp_name, target)
            finally:
                _release(held)
            pending = None
            if sync_dir:
                fsync_dir(os.path.dirname(target))
            st = os.lstat(target)
        except OSError as exc:
            raise FileError(path, os_reason(exc)) from None
        finally:
            if pending is not None:
                with contextlib.suppress(OSError):
                    os.unlink(pending)
        return FileState(
            path, "file", st.st_size, st.st_mode & 0o777, st.st_mtime_ns, state.blocks,
            None, st.st_ino,
        )  # fmt: skip

    def _remove_empty_folder(self, path: str, target: str) -> None:
        try:
            os.rmdir(target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise ConflictDetected(path) from None  # something new appeared inside
            raise

    def mkdir(self, path: str, state: FileState, expect: FileState | None = None) -> FileState:
        """Create the folder; a file in its place is replaced only if it still matches
        `expect` (the synced version, which the server keeps in its history)."""
        try:
            self._parents(path, create=True)
            target = self.abspath(path)
            st = self.stat_state(path)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                if expect is None or expect.kind != "file" or not _matches(st, expect):
                    raise ConflictDetected(path)
                os.unlink(target)  # a file that became a folder
                st = None
            if st is None:
                os.mkdir(target, (state.mode & 0o777) | 0o700)
                st = os.lstat(target)
        except OSError as exc:
            raise FileError(path, os_reason(exc)) from None
        return FileState(path, "dir", 0, st.st_mode & 0o777, 0, (), None, st.st_ino)

    def delete(self, path: str, expect: FileState, *, keep_as: str | None = None) -> bool:
        """Remove a file still matching `expect`, or an empty folder; False otherwise.

        `keep_as`: move the file into `kept_dir` under that name instead of unlinking
        it (where that fails, it is unlinked): its chunks can still build another file.
        """
        try:
            self._parents(path, create=False)
            st = self.stat_state(path)
            if st is None:
                return True
            if not _matches(st, expect):
                return False
            if expect.kind == "dir":
                try:
                    os.rmdir(self.abspath(path))
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        return False
                    raise
            elif keep_as is None or not self._keep(path, keep_as):
                os.unlink(self.abspath(path))
            return True
        except OSError as exc:
            raise FileError(path, os_reason(exc)) from None

    def _keep(self, path: str, name: str) -> bool:
        try:
            self.kept_dir.mkdir(exist_ok=True)
            os.rename(self.abspath(path), self.kept_dir / name)
        except OSError:  # another file system below the folder, a full inode table
            return False
        return True

    def kept_path(self, name: str) -> str:
        """A kept file's path as `read_chunk` takes it (relative to the root)."""
        return os.path.relpath(self.kept_dir / name, self.root).replace(os.sep, "/")

    def kept_files(self) -> list[str]:
        """Names of the files in `kept_dir`."""
        try:
            return [entry.name for entry in os.scandir(self.kept_dir)]
        except FileNotFoundError:
            return []

    def remove_kept(self, names: Iterable[str]) -> None:
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(self.kept_dir / name)

    def move_aside(self, path: str, new_path: str) -> None:
        """Rename `path` to `new_path`, which must not exist (a conflicted copy)."""
        try:
            self._parents(new_path, create=True)
            if self.exists(new_path):
                raise FileError(path, f"{new_path!r} already exists")
            os.rename(self.abspath(path), self.abspath(new_path))
        except OSError as exc:
            raise FileError(path, os_reason(exc)) from None

    # -- reading -----------------------------------------------------------------------
    def read_chunk(self, path: str, offset: int, size: int, expect_id: str) -> bytes | None:
        """Bytes of a chunk from a local file, or None if they no longer match."""
        try:
            self._parents(path, create=False)
            fd = os.open(self.abspath(path), os.O_RDONLY | os.O_NOFOLLOW)
        except (OSError, FileError):
            return None
        try:
            data = os.pread(fd, size, offset)
        except OSError:
            return None
        finally:
            os.close(fd)
        if len(data) != size or blake3.blake3(data).hexdigest() != expect_id:
            return None
        return data

    # -- upkeep ------------------------------------------------------------------------
    def cleanup_temp(self) -> None:
        """Remove temp files a killed process left behind."""
        self.tmp_dir.mkdir(exist_ok=True)
        for entry in os.scandir(self.tmp_dir):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)

    def sync_dirs(self, paths: Iterable[str]) -> None:
        """Make the renames of these files durable: fsync each parent folder once."""
        for folder in {os.path.dirname(self.abspath(p)) for p in paths}:
            with contextlib.suppress(OSError):
                fsync_dir(folder)
