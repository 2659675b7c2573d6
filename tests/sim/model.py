"""The simulated user: seeded random operations on a real folder, and the ledger of every
content written, so that "no write is lost" can be checked at the end.

What must survive (docs/RELIABILITY.md, "What no lost write means"): every content the
user wrote, unless the user destroyed it on that device (overwrote, appended to,
truncated or deleted the file, or removed a folder holding it) — a version replaced by
its own author before any sync could have sent it cannot be required. Contents are
unique per write (each starts with its own tag), so a content is identified by its
hash; the ledger counts how many live copies the user's own actions left of each.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
from collections import Counter
from pathlib import Path

import blake3

DIRS = ("d0", "d1", "D1", "d2")  # "D1" differs from "d1" only by case
FILES = ("a.txt", "b.txt", "c", "Notes.md", "data.bin", "caf\u00e9.txt")
STATE = ".syncd"


def key_of(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()[:24]


class Ledger:
    """Every content written, how many copies the user's own actions keep alive, and what
    the engines were seen to scan and destroy (for the checks and the figures)."""

    def __init__(self) -> None:
        self.ever: set[str] = set()  # every content the user ever wrote
        self.live: Counter[str] = Counter()  # writes minus the user's own destructions
        self.seen: set[str] = set()  # contents a scanner committed to a local tree
        self.unknown_seen: list[str] = []  # scanned block lists no user ever wrote
        self.blocks: dict[tuple[str, ...], str] = {}  # block ids -> content key
        self.engine_destroyed: dict[str, str] = {}  # content -> which engine op replaced it
        self.sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def wrote(self, data: bytes, block_ids: tuple[str, ...] | None = None) -> str:
        key = key_of(data)
        with self._lock:
            self.ever.add(key)
            self.live[key] += 1
            self.sizes[key] = len(data)
            if block_ids is not None:
                self.blocks[block_ids] = key
        return key

    def destroyed(self, data: bytes) -> None:
        key = key_of(data)
        with self._lock:
            if self.live[key] > 0:
                self.live[key] -= 1

    def owed(self) -> set[str]:
        return {k for k, n in self.live.items() if n > 0}

    def scanned(self, block_ids: tuple[str, ...], where: str) -> None:
        with self._lock:
            key = self.blocks.get(block_ids)
            if key is None:
                self.unknown_seen.append(where)
            else:
                self.seen.add(key)

    def engine_replaced(self, data: bytes, what: str) -> None:
        with self._lock:
            self.engine_destroyed.setdefault(key_of(data), what)


def _files_and_dirs(root: Path) -> tuple[list[str], list[str]]:
    files: list[str] = []
    dirs: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d != STATE]
            rel = ""
        for d in dirnames:
            dirs.append(f"{rel}/{d}" if rel else d)
        for f in filenames:
            path = f"{rel}/{f}" if rel else f
            if os.path.isfile(os.path.join(root, path)) and not os.path.islink(
                os.path.join(root, path)
            ):
                files.append(path)
    return sorted(files), sorted(dirs)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


class User:
    """One device's user: random edits of that device's folder, recorded in the ledger."""

    def __init__(
        self, name: str, root: Path, rng: random.Random, ledger: Ledger, tag: str, chunk=None
    ) -> None:
        self.name = name
        self.root = root
        self.rng = rng
        self.ledger = ledger
        self.tag = tag
        self.chunk = chunk  # bytes -> block ids (to recognise scanned contents)
        self.count = 0
        self.ops: Counter[str] = Counter()

    # -- contents ----------------------------------------------------------------------
    def content(self, size: int | None = None) -> bytes:
        self.count += 1
        head = f"{self.tag}/{self.name}#{self.count}\n".encode()
        if size is None:
            roll = self.rng.random()
            size = (
                self.rng.randrange(0, 200)
                if roll < 0.6
                else self.rng.randrange(200, 8000)
                if roll < 0.9
                else self.rng.randrange(8000, 80_000)
            )
        return head + self.rng.randbytes(max(0, size - len(head)))

    def _record(self, data: bytes) -> None:
        self.ledger.wrote(data, self.chunk(data) if self.chunk else None)

    def _destroy_tree(self, path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            for dirpath, _dirs, files in os.walk(path):
                for f in files:
                    data = _read(Path(dirpath) / f)
                    if data is not None:
                        self.ledger.destroyed(data)
        elif path.is_file():
            data = _read(path)
            if data is not None:
                self.ledger.destroyed(data)

    # -- operations --------------------------------------------------------------------
    def random_op(self) -> tuple[str, list[str]]:
        """Do one random operation; (its name, the paths it touched) — for the watcher."""
        files, dirs = _files_and_dirs(self.root)
        choices: list[tuple[str, float]] = [("create", 4), ("mkdir", 1)]
        if files:
            choices += [("overwrite", 3), ("append", 1.5), ("truncate", 1), ("delete", 1.5)]
            choices += [("rename", 1.5), ("chmod", 0.5), ("copy", 0.7), ("save", 1.0)]
        if dirs:
            choices += [("rmdir", 0.7), ("movedir", 0.8)]
        names, weights = zip(*choices, strict=True)
        op = self.rng.choices(names, weights)[0]
        try:
            touched = getattr(self, f"_op_{op}")(files, dirs)
        except OSError as exc:  # e.g. a folder that the engine just replaced: retry later
            self.ops["failed"] += 1
            return f"{op} failed ({exc.strerror})", []
        self.ops[op] += 1
        return op, touched

    def _new_path(self, dirs: list[str]) -> str:
        roll = self.rng.random()
        if dirs and roll < 0.5:
            folder = self.rng.choice(dirs)
            if folder.count("/") >= 2:
                folder = folder.rpartition("/")[0]
        elif roll < 0.7:
            folder = self.rng.choice(DIRS)
        else:
            folder = ""
        # now and then a file takes a folder's name (and later the other way round)
        leaf = self.rng.choice(DIRS) if self.rng.random() < 0.12 else self.rng.choice(FILES)
        return f"{folder}/{leaf}" if folder else leaf

    def write(self, rel: str, data: bytes | None = None) -> list[str]:
        """Create or overwrite `rel` (destroying what was there) with a new content."""
        target = self.root / rel
        for parent in reversed(Path(rel).parents[:-1]):
            p = self.root / parent
            if p.exists() and not p.is_dir():
                self._destroy_tree(p)
                p.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            self._destroy_tree(target)
            shutil.rmtree(target)
        elif target.exists():
            self._destroy_tree(target)
        data = self.content() if data is None else data
        self._record(data)
        with open(target, "wb") as fh:
            fh.write(data)
        return [rel]

    def _op_create(self, files: list[str], dirs: list[str]) -> list[str]:
        return self.write(self._new_path(dirs))

    def _op_overwrite(self, files: list[str], dirs: list[str]) -> list[str]:
        rel = self.rng.choice(files)
        old = _read(self.root / rel) or b""
        same_size = self.rng.random() < 0.3 and len(old) > 40
        return self.write(rel, self.content(len(old) if same_size else None))

    def _op_append(self, files: list[str], dirs: list[str]) -> list[str]:
        rel = self.rng.choice(files)
        old = _read(self.root / rel)
        if old is None:
            return []
        tail = self.content(self.rng.randrange(1, 3000))
        self.ledger.destroyed(old)
        self._record(old + tail)
        with open(self.root / rel, "ab") as fh:
            fh.write(tail)
        return [rel]

    def _op_truncate(self, files: list[str], dirs: list[str]) -> list[str]:
        rel = self.rng.choice(files)
        old = _read(self.root / rel)
        if old is None:
            return []
        size = self.rng.randrange(0, len(old) + 1)
        self.ledger.destroyed(old)
        self._record(old[:size])
        os.truncate(self.root / rel, size)
        return [rel]

    def _op_delete(self, files: list[str], dirs: list[str]) -> list[str]:
        rel = self.rng.choice(files)
        self._destroy_tree(self.root / rel)
        (self.root / rel).unlink()
        return [rel]

    def _op_rename(self, files: list[str], dirs: list[str]) -> list[str]:
        src = self.rng.choice(files)
        dst = self._new_path(dirs)
        target = self.root / dst
        if dst == src or target.is_dir() or (self.root / dst).parent.is_file():
            return []
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            self._destroy_tree(target)  # a rename onto a file replaces it
        os.rename(self.root / src, target)
        return [src, dst]

    def _op_copy(self, files: list[str], dirs: list[str]) -> list[str]:
        """A second copy of a file's bytes (the same content at another path)."""
        src = self.rng.choice(files)
        data = _read(self.root / src)
        dst = self._new_path(dirs)
        if data is None or dst == src:
            return []
        return self.write(dst, data)

    def _op_save(self, files: list[str], dirs: list[str]) -> list[str]:
        """An editor's atomic save: the new version written beside, renamed over."""
        rel = self.rng.choice(files)
        target = self.root / rel
        old = _read(target)
        if old is None:
            return []
        data = self.content()
        side = target.with_name(target.name + ".new")
        side.write_bytes(data)
        self._record(data)
        self.ledger.destroyed(old)
        os.replace(side, target)
        return [rel, str(Path(rel).with_name(side.name))]

    def _op_chmod(self, files: list[str], dirs: list[str]) -> list[str]:
        rel = self.rng.choice(files)
        mode = os.stat(self.root / rel).st_mode
        os.chmod(self.root / rel, (mode ^ 0o111) & 0o777)
        return [rel]

    def _op_mkdir(self, files: list[str], dirs: list[str]) -> list[str]:
        base = self.rng.choice(dirs) if dirs and self.rng.random() < 0.4 else ""
        leaf = self.rng.choice(FILES) if self.rng.random() < 0.12 else self.rng.choice(DIRS)
        rel = f"{base}/{leaf}" if base else leaf
        if rel.count("/") > 2:
            return []
        target = self.root / rel
        if target.is_file():  # a file replaced by a folder of the same name
            self._destroy_tree(target)
            target.unlink()
        elif target.exists() or not target.parent.is_dir():
            return []
        target.mkdir()
        return [rel]

    def _op_rmdir(self, files: list[str], dirs: list[str]) -> list[str]:
        rel = self.rng.choice(dirs)
        self._destroy_tree(self.root / rel)
        shutil.rmtree(self.root / rel)
        return [rel]

    def _op_movedir(self, files: list[str], dirs: list[str]) -> list[str]:
        src = self.rng.choice(dirs)
        base = self.rng.choice(["", *dirs])
        dst = f"{base}/{self.rng.choice(DIRS)}" if base else self.rng.choice(DIRS)
        if dst == src or dst.startswith(src + "/") or (self.root / dst).exists():
            return []
        if dst.count("/") > 3 or not (self.root / dst).parent.is_dir():
            return []
        os.rename(self.root / src, self.root / dst)
        return [src, dst]
