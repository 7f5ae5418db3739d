"""Child processes of the benchmarks and tests: free ports, clean environments, start-up and
shutdown of servers in their own process groups (SIGTERM, then SIGKILL).

``langgraph dev`` runs in a scratch directory linking to the repo's ``langgraph.json`` and
``graph/`` (its in-memory runtime writes ``.langgraph_api/`` into the working directory).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0
_API_URL = re.compile(r"API:\s*(?:\x1b\[[0-9;]*m)?(http://[^\s\x1b]+)")


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """This environment without inherited ``SGR_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGR_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Until ``GET {url}/healthz`` answers 200; ``RuntimeError`` with the log's tail if the
    process exits or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy after {timeout_s:g}s: {log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (started in its own session), then SIGKILL whatever is
    left (a grandchild may outlive the leader); closes its stdout pipe."""
    if proc.poll() is None:
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.stdout is not None:
        proc.stdout.close()


def read_ready_url(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> str:
    """The URL of a fake server's first stdout line ``READY <url>``; ``RuntimeError`` (with
    the tail of ``log``) if it exits or says nothing else within ``timeout_s``."""
    assert proc.stdout is not None
    line = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
            elif proc.poll() is not None:
                break
    text = line.decode(errors="replace").strip()
    if not text.startswith("READY "):
        raise RuntimeError(f"fake LLM did not start: {text!r} {log.read_text()[-2000:]}")
    return text.split(maxsplit=1)[1]


@contextlib.contextmanager
def fake_llm(latency: float, log: Path) -> Iterator[str]:
    """The fixed-latency fake LLM (``graph.ops.bench.perf.fake_llm``) in a subprocess;
    yields its OpenAI base URL."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "graph.ops.bench.perf.fake_llm", "--latency", str(latency)],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        yield read_ready_url(proc, log, 30.0)
    finally:
        stop(proc)


def wait_until_up(
    proc: subprocess.Popen[bytes], log: Path, port: int, timeout_s: float = START_TIMEOUT_S
) -> str:
    """The URL of a ``langgraph dev`` once ``/ok`` answers; ``RuntimeError`` (with the tail of
    ``log``) if it exits or is not up within ``timeout_s``. The server silently moves to
    another port if ours was taken meanwhile: the URL is read from its log."""
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"langgraph dev exited with {proc.returncode}: {log.read_text()[-3000:]}"
            )
        m = _API_URL.search(log.read_text(errors="replace"))
        url = m.group(1).rstrip("/") if m else url
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return url
        time.sleep(0.5)
    raise RuntimeError(f"langgraph dev not up after {timeout_s:g}s: {log.read_text()[-3000:]}")


def start_langgraph_dev(
    workdir: Path, log: Path, port: int, env: dict[str, str], *args: str
) -> subprocess.Popen[bytes]:
    """``langgraph dev`` (no browser, no reload, offline) on ``127.0.0.1:port`` in its own
    process group, run in ``workdir`` linked to the repo's ``langgraph.json`` and ``graph/``,
    its output in ``log``; ``env`` (``SGR_*``) and ``args`` go to the server."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("langgraph.json", "graph"):
        link = workdir / name
        if not link.exists():
            link.symlink_to(REPO / name)
    full_env = child_env(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
        **env,
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "langgraph_cli", "dev", "--no-browser", "--no-reload"),
                *("--host", "127.0.0.1", "--port", str(port), "--config", "langgraph.json"),
                *args,
            ],
            cwd=workdir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
