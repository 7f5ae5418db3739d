"""Where the stores live inside a data dir: one place for the file names."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple


class DataFiles(NamedTuple):
    """The three store files of a data dir."""

    hot: Path  # SQLite: live shopping sessions (replaced by ``setup-data``)
    cold: Path  # DuckDB: customer analytics (replaced by ``setup-data``)
    ledger: Path  # SQLite: the offer ledger (never touched by ``setup-data``)


@lru_cache(maxsize=64)  # read on every store access of every turn: path joins add up
def data_files(data_dir: Path | str) -> DataFiles:
    """The store files of ``data_dir``."""
    root = Path(data_dir)
    return DataFiles(root / "hot.sqlite", root / "cold.duckdb", root / "ledger.sqlite")
