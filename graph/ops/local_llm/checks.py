"""Read-only checks before and after a start: a busy port, free memory, ``/models`` answering."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import httpx


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on (host, port) - tested by binding like a server."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def endpoint_alive(base_url: str, timeout: float = 2.0) -> bool:
    """True if ``GET {base_url}/models`` answers 200 (proxies from the environment are ignored)."""
    try:
        resp = httpx.get(
            base_url.rstrip("/") + "/models",
            timeout=timeout,
            trust_env=False,
            follow_redirects=True,
        )
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):
        return False
    return resp.status_code == 200
