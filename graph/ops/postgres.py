"""A throwaway PostgreSQL server: the tests' and the benchmarks' (``SGR_TEST_DATABASE_URL``
names an outside server to use instead).

``initdb`` + ``pg_ctl`` (Debian's ``postgresql-15``) start one in a temp dir, on a Unix socket
only (``listen_addresses=''``), without fsync; as root through ``runuser -u postgres``
(Postgres refuses to run as root). ``create_database()`` gives a fresh, empty database.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

ENV_URL = "SGR_TEST_DATABASE_URL"


class PostgresUnavailable(RuntimeError):
    """No server could be started or reached."""


def _bindir() -> Path:
    """The directory of ``initdb`` / ``pg_ctl`` (Debian's versioned dirs, then ``PATH``)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise PostgresUnavailable("initdb not found (install the postgresql server package)")


def _with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (host, user and options kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name)))


class PostgresServer:
    """A server to create test databases in: started here, or ``SGR_TEST_DATABASE_URL``'s."""

    def __init__(self) -> None:
        self.url = ""  # admin URL (the maintenance database)
        self._root: Path | None = None
        self._data: Path | None = None
        self._ctl: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> PostgresServer:
        external = os.environ.get(ENV_URL)
        if external:
            self.url = external
            self._check()
            return self
        bindir = _bindir()
        self._root = Path(tempfile.mkdtemp(prefix="sgr-pg-"))
        self._data = self._root / "data"
        sock = self._root / "sock"
        self._data.mkdir()
        sock.mkdir()
        as_postgres: list[str] = []
        if os.geteuid() == 0:  # Postgres will not run as root
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root and runuser is missing")
            shutil.chown(self._root, "postgres")
            shutil.chown(self._data, "postgres")
            shutil.chown(sock, "postgres")
            os.chmod(self._root, 0o755)
            as_postgres = ["runuser", "-u", "postgres", "--"]
        self._ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(self._data)]
        atexit.register(self.stop)
        initdb = [str(bindir / "initdb"), "--no-sync", "-D", str(self._data), "-A", "trust"]
        self._sh([*as_postgres, *initdb, "-U", "postgres", "-E", "UTF8", "--locale=C"])
        options = (
            f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c listen_addresses='' -k {sock} -c max_connections=200 -c shared_buffers=64MB"
        )
        self._sh([*self._ctl, "-o", options, "-l", str(self._root / "server.log"), "-w", "start"])
        self.url = f"postgresql://postgres@/postgres?host={quote(str(sock), safe='')}"
        self._check()
        return self

    def _sh(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = ""
            if self._root is not None and (self._root / "server.log").is_file():
                log = (self._root / "server.log").read_text()[-2000:]
            raise PostgresUnavailable(
                f"{' '.join(argv[:6])}... failed ({done.returncode}): "
                f"{done.stderr.strip()[-2000:]} {log}"
            )

    def _check(self) -> None:
        try:
            with psycopg.connect(self.url, connect_timeout=10) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise PostgresUnavailable(f"cannot connect to {self.url}: {exc}") from exc

    def stop(self) -> None:
        """Stop a server started here (``-m immediate``) and delete its files; idempotent."""
        if self._ctl and self._data is not None and self._data.exists():
            subprocess.run([*self._ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
            self._ctl = []
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # -- databases ---------------------------------------------------------------------

    def create_database(self) -> str:
        """A new empty database ``t_<hex>``; its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            # FILE_COPY (15+): a checkpoint and a file copy, 3x faster than WAL_LOG here
            fast = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}"{fast}')
        return _with_database(self.url, name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (connections still open to it are ended)."""
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
