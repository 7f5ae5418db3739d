"""Process-wide store instances keyed by data dir, reopened when a file is replaced."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from graph.settings import Settings

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
    """One store per data dir; a stat per ``get`` detects replaced files."""

    def __init__(
        self,
        opener: Callable[[Settings], S],
        files: Callable[[Settings], tuple[Path, ...]],
    ) -> None:
        self._opener = opener
        self._files = files
        self._lock = threading.Lock()
        self._entries: dict[Path, tuple[_Identity, S]] = {}

    def get(self, settings: Settings) -> S:
        """The cached store for ``settings.data_dir``, (re)opened when needed."""
        key = Path(settings.data_dir).resolve()
        ident = _identity(self._files(settings))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == ident:
                return entry[1]
            if entry is not None:
                # Threads may still hold the old instance: let GC close it, do not yank it.
                log.info("store files under %s were replaced: reopening", key)
            store = self._opener(settings)
            self._entries[key] = (_identity(self._files(settings)), store)
            return store

    def reset(self, data_dir: Path | None = None) -> None:
        """Close and forget the store of ``data_dir`` (all stores when ``None``)."""
        with self._lock:
            keys = list(self._entries) if data_dir is None else [Path(data_dir).resolve()]
            for key in keys:
                entry = self._entries.pop(key, None)
                if entry is not None:
                    entry[1].close()
