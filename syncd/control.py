"""The daemon's control socket: JSON lines over a Unix socket, for the CLI and the tray.

Protocol (UTF-8, one JSON object per line; requests at most 1 MiB):

    request   {"cmd": "status", "args": {}}
    response  {"ok": true, "result": {...}}      or      {"ok": false, "error": "message"}

A connection carries any number of requests, answered in order; the client closes it.
The socket file is created 0600 (under a 0700 state directory), so only its owner can
talk to the daemon. The handler is the daemon's: `handler(cmd, args) -> dict`; whatever
it raises becomes an error response (a SyncdError's message as is), never a dead server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from syncd.errors import SyncdError

MAX_LINE = 1 << 20  # a request
MAX_RESPONSE = 64 << 20  # an answer (`ls` of a large folder)
IDLE_TIMEOUT = 300.0  # a connection silent this long is closed
NOT_RUNNING = "syncd is not running (start it with: syncd start)"
_SHORT_PATH = 100  # sun_path holds 104 (macOS) to 108 (Linux) bytes, NUL included

Handler = Callable[[str, dict], dict]
log = logging.getLogger("syncd.control")
_umask_lock = threading.Lock()


class DaemonNotRunning(SyncdError):
    """Nothing listens on the control socket."""

    exit_code = 3

    def __init__(self, message: str = NOT_RUNNING) -> None:
        super().__init__(message)


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """A name for `path` that fits in sun_path: itself, or via /proc/self/fd on Linux."""
    if len(os.fsencode(path)) < _SHORT_PATH:
        yield str(path)
        return
    if not os.path.isdir("/proc/self/fd"):
        raise SyncdError(f"the socket path {path} is too long; choose a shorter SYNCD_HOME")
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{dirfd}/{path.name}"
    finally:
        os.close(dirfd)


def _connect(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _address(path) as addr:
            sock.connect(addr)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        sock.close()
        raise DaemonNotRunning() from None
    except TimeoutError:
        sock.close()
        raise SyncdError(f"the daemon at {path} does not accept connections") from None
    except OSError as exc:
        sock.close()
        raise SyncdError(f"cannot reach the daemon at {path}: {exc.strerror or exc}") from None
    return sock


def control_request(sock_path: Path | str, cmd: str, timeout: float = 10.0, **args: Any) -> dict:
    """Send one command to the daemon and return its result.

    Raises DaemonNotRunning if nothing listens, SyncdError with the daemon's message if it
    answers `ok: false`, and SyncdError if it does not answer within `timeout` seconds.
    """
    path = Path(sock_path)
    line = json.dumps({"cmd": cmd, "args": args}).encode() + b"\n"
    with _connect(path, timeout) as sock:
        try:
            sock.sendall(line)
            with sock.makefile("rb") as reader:
                raw = reader.readline(MAX_RESPONSE + 1)
        except TimeoutError:
            raise SyncdError(f"the daemon did not answer {cmd!r} within {timeout:g} s") from None
        except OSError as exc:
            raise SyncdError(f"lost the connection to the daemon: {exc.strerror or exc}") from None
    if not raw.endswith(b"\n"):
        raise SyncdError(f"the daemon closed the connection without answering {cmd!r}")
    try:
        response = json.loads(raw)
    except ValueError:
        raise SyncdError("the daemon sent a malformed answer") from None
    if not isinstance(response, dict):
        raise SyncdError("the daemon sent a malformed answer")
    if not response.get("ok"):
        raise SyncdError(str(response.get("error") or "the daemon reported an unknown error"))
    result = response.get("result")
    return result if isinstance(result, dict) else {}


def _remove_stale(path: Path) -> None:
    """Remove a socket file no one listens on; refuse to touch anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SyncdError(f"{path} exists and is not a socket; move it out of the way")
    try:
        _connect(path, 2.0).close()
    except DaemonNotRunning:
        path.unlink(missing_ok=True)
        return
    except SyncdError:
        pass
    raise SyncdError(f"another process already listens on {path}")


class ControlServer:
    """Serve `handler` on a Unix socket, one thread per connection, until `close()`."""

    def __init__(self, sock_path: Path | str, handler: Handler) -> None:
        self.path = Path(sock_path)
        self.handler = handler
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> ControlServer:
        """Bind the socket (0600 from its first instant) and serve in a daemon thread."""
        if self._listener is not None or self._closed:
            raise RuntimeError("ControlServer.start() may be called once")
        _remove_stale(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _address(self.path) as addr, _umask_lock:
                # The umask is process-wide: the daemon starts this before its other threads.
                old = os.umask(0o177)
                try:
                    listener.bind(addr)
                finally:
                    os.umask(old)
            listener.listen(16)
            st = os.stat(self.path)
        except OSError as exc:
            listener.close()
            raise SyncdError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        self._inode = (st.st_dev, st.st_ino)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, name="control", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, drop open connections and remove the socket file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(OSError):
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) == self._inode:
                    self.path.unlink()
        self._wake_r.close()
        self._wake_w.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in sel.select()]
                if self._wake_r in ready:
                    return
                try:
                    conn, _ = self._listener.accept()
                except OSError as exc:
                    log.warning("control socket accept: %s", exc)
                    continue
                with self._lock:
                    if self._closed:
                        conn.close()
                        return
                    self._conns.add(conn)
                threading.Thread(
                    target=self._serve, args=(conn,), name="control-conn", daemon=True
                ).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(IDLE_TIMEOUT)
        try:
            with conn, conn.makefile("rb") as reader:
                while True:
                    raw = reader.readline(MAX_LINE + 1)
                    if not raw:
                        return
                    if not raw.endswith(b"\n"):
                        if len(raw) > MAX_LINE:
                            conn.sendall(_encode({"ok": False, "error": "request too long"}))
                        return
                    conn.sendall(_encode(self._respond(raw)))
        except OSError:
            pass  # the client went away, timed out, or we are closing
        finally:
            with self._lock:
                self._conns.discard(conn)

    def _respond(self, raw: bytes) -> dict:
        try:
            request = json.loads(raw)
        except ValueError:
            return {"ok": False, "error": "malformed request: not JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'malformed request: expected {"cmd": str, "args": {}}'}
        args = request.get("args") or {}
        if not isinstance(args, dict):
            return {"ok": False, "error": "malformed request: 'args' must be an object"}
        cmd = request["cmd"]
        try:
            result = self.handler(cmd, args)
        except SyncdError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control command %r failed", cmd)
            return {"ok": False, "error": f"internal error in {cmd!r}: {type(exc).__name__}: {exc}"}
        if result is None:
            result = {}
        if not isinstance(result, dict):
            return {"ok": False, "error": f"internal error in {cmd!r}: result is not an object"}
        return {"ok": True, "result": result}


def _encode(response: dict) -> bytes:
    try:
        text = json.dumps(response, allow_nan=False)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"ok": False, "error": f"internal error: answer not JSON ({exc})"})
    return text.encode() + b"\n"
