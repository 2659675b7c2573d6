"""The tools syncd is measured against, each behind the same small interface."""

from bench.peers.contenders.base import Contender, Wire
from bench.peers.contenders.rsync import Rsync
from bench.peers.contenders.syncd import Syncd
from bench.peers.contenders.syncthing import Syncthing

__all__ = ["Contender", "Rsync", "Syncd", "Syncthing", "Wire", "all_contenders"]


def all_contenders() -> list[Contender]:
    """Every contender of the issue, in table order."""
    return [Syncd(), Syncthing(delay=None), Syncthing(delay=1), Rsync()]
