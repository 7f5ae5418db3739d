"""A throwaway PostgreSQL server for the tests, and a fresh database per test.

``conftest.py`` exposes it as fixtures:

* ``pg_server`` (session): the running server (``PostgresServer``), started once;
* ``pg_url`` (function): the URL of a new, empty database, dropped after the test;
* ``backend_url`` (function, parametrised with ``BACKENDS``): a test that takes it runs
  twice, with ``None`` (SQLite files) and with a ``pg_url``.

Tests that use them are marked ``postgres``. With ``SGR_TEST_DATABASE_URL`` set, that server
is used (databases are created and dropped in it). Otherwise ``initdb`` + ``pg_ctl`` start one
in a temp dir, on a Unix socket only (``listen_addresses=''``), without fsync; as root, through
``runuser -u postgres`` (Postgres refuses to run as root). When no server can be had, the
tests fail under ``CI`` and are skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import os

import pytest

from graph.ops.postgres import ENV_URL, PostgresServer, PostgresUnavailable

__all__ = ["BACKENDS", "ENV_URL", "PostgresServer", "PostgresUnavailable", "unavailable"]

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""The parameters of ``backend_url`` (and of any fixture of a test's own that wants both)."""


def unavailable(reason: str) -> None:
    """Fail under ``CI`` (a Postgres test must never be skipped there), else skip."""
    message = f"PostgreSQL unavailable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
