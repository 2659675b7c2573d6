"""A device's state directory (`SYNCD_HOME`): its config and where its files live."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

from syncd.errors import FatalError

HOME_ENV = "SYNCD_HOME"
NOT_LINKED = "this device is not linked; run: syncd link URL --user NAME --folder PATH"


@dataclass(frozen=True)
class ClientConfig:
    """What `syncd link` learned: which server, user, device, namespace and folder."""

    server_url: str
    user: str
    device: str
    device_id: int
    namespace: int
    folder: str  # absolute path of the sync folder
    chunking: dict[str, int] = field(default_factory=dict)  # {"min", "avg", "max"}
    ca: str | None = None  # a private CA's certificate (PEM) to verify the server with

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> ClientConfig:
        """Build from parsed JSON, raising ValueError naming the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        strings = ("server_url", "user", "device", "folder")
        ints = ("device_id", "namespace")
        for key in strings:
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"{key!r} must be a non-empty string")
        for key in ints:
            if not isinstance(data.get(key), int) or isinstance(data[key], bool):
                raise ValueError(f"{key!r} must be an integer")
        chunking = data.get("chunking", {})
        if not isinstance(chunking, dict) or not all(isinstance(v, int) for v in chunking.values()):
            raise ValueError("'chunking' must map names to integers")
        if not os.path.isabs(data["folder"]):
            raise ValueError("'folder' must be an absolute path")
        ca = data.get("ca")
        if ca is not None and (not isinstance(ca, str) or not os.path.isabs(ca)):
            raise ValueError("'ca' must be an absolute path")
        return cls(
            **{k: data[k] for k in strings + ints},
            chunking={str(k): int(v) for k, v in chunking.items()},
            ca=ca,
        )


def default_state_dir() -> Path:
    """The state directory when neither --home nor $SYNCD_HOME says otherwise."""
    return platformdirs.user_state_path("syncd")


class ClientHome:
    """The state directory of one device; several homes can live on one machine."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()

    @classmethod
    def resolve(cls, home: Path | str | None = None) -> ClientHome:
        """`home` if given, else $SYNCD_HOME, else the platform's user state directory."""
        if home:
            return cls(home)
        env = os.environ.get(HOME_ENV)
        if env:
            return cls(env)
        return cls(default_state_dir())

    def __repr__(self) -> str:
        return f"ClientHome({str(self.root)!r})"

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def pid_path(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "daemon.log"

    @property
    def socket_path(self) -> Path:
        return self.root / "control.sock"

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite3"

    @property
    def token_path(self) -> Path:
        """The 0600 token file, used only where no OS keyring works."""
        return self.root / "token"

    def ensure(self) -> ClientHome:
        """Create the directory (0700, parents as needed); return self."""
        if not self.root.is_dir():
            try:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(self.root, 0o700)  # mkdir's mode is filtered by the umask
            except OSError as exc:
                raise FatalError(f"cannot create {self.root}: {exc.strerror or exc}") from None
        return self

    def is_linked(self) -> bool:
        return self.config_path.is_file()

    def load_config(self) -> ClientConfig:
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FatalError(NOT_LINKED) from None
        except OSError as exc:
            raise FatalError(f"cannot read {self.config_path}: {exc.strerror}") from None
        try:
            return ClientConfig.from_dict(json.loads(text))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise FatalError(
                f"{self.config_path} is damaged ({exc}); link again: "
                "syncd link URL --user NAME --folder PATH"
            ) from None

    def save_config(self, cfg: ClientConfig) -> None:
        """Write config.json atomically (temp file, fsync, rename), mode 0600."""
        self.ensure()
        write_private(self.config_path, json.dumps(cfg.to_dict(), indent=2) + "\n")


def write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with `text` in a file readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)  # in case an old temp file had other bits
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
