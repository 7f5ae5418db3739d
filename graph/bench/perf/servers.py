"""Subprocesses of the benchmark: the fixed-latency fake LLM and ``langgraph dev`` servers.

Each runs in its own process group on a free loopback port and is stopped (SIGTERM, then
SIGKILL) when its context exits. ``langgraph dev`` runs in a scratch directory linking to the
repo's ``langgraph.json`` and ``graph/`` (its in-memory runtime writes ``.langgraph_api/``
into the working directory).
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

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 120.0
_API_URL = re.compile(r"API:\s*(?:\x1b\[[0-9;]*m)?(http://[^\s\x1b]+)")


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGR_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if proc.poll() is None:
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def fake_llm(latency: float, log: Path) -> Iterator[str]:
    """``graph.bench.perf.fake_llm`` in a subprocess; yields its OpenAI base URL."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "graph.bench.perf.fake_llm", "--latency", str(latency)],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        line = b""
        deadline = time.monotonic() + 30
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
        yield text.split(maxsplit=1)[1]
    finally:
        stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_up(proc: subprocess.Popen[bytes], log: Path, port: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"langgraph dev exited: {log.read_text()[-3000:]}")
        m = _API_URL.search(log.read_text(errors="replace"))
        url = m.group(1).rstrip("/") if m else url
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return url
        time.sleep(0.5)
    raise RuntimeError(
        f"langgraph dev not up after {START_TIMEOUT_S:g}s: {log.read_text()[-3000:]}"
    )


@contextlib.contextmanager
def langgraph_dev(
    workdir: Path,
    llm_url: str,
    data_dir: Path,
    checkpoint_db: Path,
    jobs: int,
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """``langgraph dev --n-jobs-per-worker jobs --allow-blocking`` on a free port; yields its
    URL. ``extra_env``/``extra_args`` go to the server (e.g. ``SGR_DEV_QUEUE_POLL_S``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("langgraph.json", "graph"):
        link = workdir / name
        if not link.exists():
            link.symlink_to(REPO / name)
    log = workdir / "langgraph_dev.log"
    port = free_port()
    env = _env(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
        SGR_LLM_BASE_URL=llm_url,
        SGR_LLM_MODEL="bench-model",
        SGR_STRUCTURED_OUTPUT="structured_outputs",
        SGR_VERIFY_CONSTRAINT="false",
        SGR_DATA_DIR=str(data_dir),
        SGR_CHECKPOINT_DB=str(checkpoint_db),
        **(extra_env or {}),
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "langgraph_cli", "dev", "--no-browser", "--no-reload"),
                *("--host", "127.0.0.1", "--port", str(port), "--config", "langgraph.json"),
                *("--n-jobs-per-worker", str(jobs)),
                # no blockbuster: it wraps every blocking call of every node thread to catch
                # blocking I/O on the event loop (a dev check; deployments do not run it)
                "--allow-blocking",
                *extra_args,
            ],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield _wait_up(proc, log, port)
    finally:
        stop(proc)
