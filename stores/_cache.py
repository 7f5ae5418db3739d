"""Process-wide store instances keyed by data dir, reopened when a file is replaced."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)
_Identity = tuple[tuple[int, int] | None, ...]


def _identity(paths: tuple[Path, ...]) -> _Identity:
    """(device, inode) of each file: changes when ``setup-data`` swaps a file in."""
    out: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_dev, st.st_ino))
    return tuple(out)


class StoreCache(Generic[S]):
    """One store per tuple of files; a stat per ``get`` detects replaced files."""

    def __init__(self, opener: Callable[..., S]) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._entries: dict[tuple[Path, ...], tuple[_Identity, S]] = {}
        self._resolved: dict[tuple[Path | str, ...], tuple[Path, ...]] = {}

    def get(self, *paths: Path) -> S:
        """The cached store on ``paths`` (``opener(*paths)``), reopened when a file changed."""
        key = self._resolved.get(paths)
        if key is None:  # resolve() costs a few lstat calls: once per path tuple
            key = self._resolved[paths] = tuple(Path(p).resolve() for p in paths)
        ident = _identity(key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == ident:
                return entry[1]
            if entry is not None:
                # Threads may still hold the old instance: let GC close it, do not yank it.
                log.info("store files %s were replaced: reopening", [str(p) for p in key])
            store = self._opener(*key)
            self._entries[key] = (_identity(key), store)
            return store

    def reset(self, directory: Path | None = None) -> None:
        """Close and forget the stores with files under ``directory`` (all when ``None``)."""
        root = None if directory is None else Path(directory).resolve()
        with self._lock:
            keys = [k for k in self._entries if root is None or k[0].parent == root]
            for key in keys:
                entry = self._entries.pop(key, None)
                if entry is not None:
                    entry[1].close()
