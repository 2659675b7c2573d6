"""Process plumbing for the daemon: pid-file lock, background spawn, stop, log file.

The pid file `daemon.pid` is held with flock() for the daemon's whole life, so "is a
daemon running for this home?" is answered by the kernel, never by a stale pid: a
crashed daemon's lock vanishes with it. The file is emptied, not removed, on release
(removing a lock file lets two processes lock two different inodes).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import logging.handlers
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType

import syncd
from syncd.control import DaemonNotRunning, control_request
from syncd.errors import FatalError, SyncdError
from syncd.home import ClientHome

LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

log = logging.getLogger("syncd.daemonize")


class AlreadyRunning(SyncdError):
    """Another daemon holds this home's pid-file lock."""

    def __init__(self, pid: int | None) -> None:
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"syncd is already running{who}")
        self.pid = pid


class PidFile:
    """`daemon.pid`, locked by the running daemon for as long as it lives."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> PidFile:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Lock the file and write our pid, or raise AlreadyRunning."""
        if self._fd is not None:
            raise AlreadyRunning(os.getpid())
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise FatalError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self.read_pid()) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing drops the flock

    def is_running(self) -> bool:
        """True if some process (this one included) holds the lock."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def read_pid(self) -> int | None:
        """The pid written by the holder (None if the file is missing, empty or garbled)."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and int(text) > 0 else None


# -- logging -------------------------------------------------------------------------------
_SECRETS = (
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',}]+"),
    re.compile(r"(?i)(\"?\b(?:token|password|passwd|secret)\"?\s*[:=]\s*\"?)[^\s\"',}]+"),
)


def redact(text: str) -> str:
    """Mask bearer tokens and token/password values in a log line."""
    for pattern in _SECRETS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that keeps tokens and passwords out of every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def stderr_is(path: Path) -> bool:
    """True if file descriptor 2 is `path` (a spawned daemon's stderr is its log file)."""
    try:
        a, b = os.fstat(2), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def setup_logging(
    log_path: Path, level: str = "info", *, to_stderr: bool = False
) -> list[logging.Handler]:
    """Log to a rotating file (~5 MB x 3), and to stderr if asked; returns the handlers."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(
            log_path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    ]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return handlers


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    log.critical("thread %s died", name, exc_info=exc_info)  # type: ignore[arg-type]


# -- foreground ----------------------------------------------------------------------------
DaemonMain = Callable[[ClientHome, threading.Event], None]


DAEMON_ALLOCATOR = "malloc"


def use_daemon_allocator(
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    execve: Callable[[str, list[str], dict[str, str]], object] = os.execve,
) -> None:
    """Re-exec this process once with PYTHONMALLOC=malloc if it was launched as
    `syncd ... start --foreground` and no allocator was chosen in its environment.

    The daemon's work comes in bursts (the first sync of 100,000 files builds and drops
    millions of objects) and then it idles for hours. Python's own small-object
    allocator keeps a 1 MiB arena for as long as one object in it lives, so after a
    burst most of the peak stays resident; with the C allocator, `malloc_trim` hands
    every free page back (measured in docs/PERFORMANCE.md, scenario 8). Called before
    any thread or file is opened; a process started any other way (a test calling the
    command in-process) is left alone, and so is a PYTHONMALLOC the user set.
    """
    argv = list(sys.orig_argv) if argv is None else argv
    env = dict(os.environ) if env is None else env
    if os.name != "posix" or "PYTHONMALLOC" in env:
        return
    if "start" not in argv or "--foreground" not in argv:
        return
    execve(sys.executable, [sys.executable, *argv[1:]], {**env, "PYTHONMALLOC": DAEMON_ALLOCATOR})


def run_foreground(home: ClientHome, target: DaemonMain, log_level: str = "info") -> None:
    """Hold the pid lock, log to the home's file, and run `target` until a stop signal.

    SIGTERM, SIGINT and SIGHUP set the stop event; a second one raises KeyboardInterrupt.
    """
    home.ensure()
    pidfile = PidFile(home.pid_path)
    pidfile.acquire()
    try:
        handlers = setup_logging(home.log_path, log_level, to_stderr=not stderr_is(home.log_path))
        try:
            _run_with_signals(home, target)
        finally:
            log.info("daemon exited")
            for handler in handlers:
                logging.getLogger().removeHandler(handler)
                handler.close()
    finally:
        pidfile.release()


def _run_with_signals(home: ClientHome, target: DaemonMain) -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    old_hook, threading.excepthook = threading.excepthook, _log_thread_crash
    log.info("daemon starting: pid %d, home %s", os.getpid(), home.root)
    try:
        target(home, stop)
    except SyncdError as exc:
        log.error("daemon stopped: %s", exc)
        raise
    except Exception as exc:
        log.exception("daemon crashed")  # the traceback goes to the log, once
        raise FatalError(f"the daemon crashed: {exc!r}; see {home.log_path}") from exc
    finally:
        threading.excepthook = old_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- background ----------------------------------------------------------------------------
def log_tail(path: Path, lines: int = 15) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:]) or "(log is empty)"


def spawn_daemon(home: ClientHome, log_level: str = "info", timeout: float = 30.0) -> int:
    """Start `syncd start --foreground` detached; return its pid once its socket answers."""
    home.ensure()
    cmd = [sys.executable, "-m", "syncd", "--home", str(home.root), "start", "--foreground"]
    cmd += ["--log-level", log_level]
    package_parent = str(Path(syncd.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    err_fd = os.open(home.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err_fd,  # crashes before logging is set up still reach the log
            start_new_session=True,
            close_fds=True,
            cwd="/",
            env=env,
        )
    finally:
        os.close(err_fd)
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            pidfile = PidFile(home.pid_path)
            if pidfile.is_running():  # another `syncd start` won the race
                raise AlreadyRunning(pidfile.read_pid())
            raise FatalError(
                f"the daemon exited at start (exit code {code}); the end of {home.log_path}:\n"
                + log_tail(home.log_path)
            )
        try:
            control_request(home.socket_path, "status", timeout=2.0)
            return proc.pid
        except SyncdError:
            pass
        if time.monotonic() > deadline:
            raise FatalError(
                f"the daemon (pid {proc.pid}) did not answer within {timeout:g} s; "
                f"see {home.log_path}"
            )
        time.sleep(0.05)


def stop_daemon(home: ClientHome, timeout: float = 30.0) -> int | None:
    """Ask the daemon to stop (control socket, else SIGTERM) and wait until it has exited.

    Returns the pid that was stopped, or None if no daemon was running.
    """
    pidfile = PidFile(home.pid_path)
    pid = pidfile.read_pid()
    try:
        control_request(home.socket_path, "stop", timeout=10.0)
    except SyncdError as exc:  # not listening, or not answering: use the pid file
        if not pidfile.is_running():
            if isinstance(exc, DaemonNotRunning):
                return None
            raise
        pid = pidfile.read_pid()
        if pid is None:
            raise FatalError(f"a daemon holds {home.pid_path} but wrote no pid") from None
        log.info("control socket: %s; sending SIGTERM to %d", exc, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pidfile.is_running():
        if time.monotonic() > deadline:
            raise FatalError(
                f"the daemon (pid {pid}) did not stop within {timeout:g} s; "
                f"force it with: kill -9 {pid}"
            )
        time.sleep(0.05)
    return pid
