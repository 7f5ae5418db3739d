"""The server's pid file and its process: alive? ours? and stopping it for good."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path

from graph.ops.local_llm.base import STOP_GRACE_S, _Paths

_log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reaps it if it is our own dead child)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state not in (["Z"], ["X"])


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _is_our_server(pid: int) -> bool:
    """The pid is alive and is a vLLM process (not a reused pid of something else)."""
    return _pid_alive(pid) and "vllm" in _cmdline(pid).lower()


def _read_pid_file(paths: _Paths) -> dict[str, object] | None:
    try:
        text = paths.pid_file.read_text().strip()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, int):  # plain pid
        data = {"pid": data}
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    return data


def _running_pid(paths: _Paths) -> int | None:
    """Pid of our server per the pid file; removes a stale or foreign pid file."""
    data = _read_pid_file(paths)
    if data is None:
        if paths.pid_file.exists():
            _log.warning("removing unreadable pid file %s", paths.pid_file)
            paths.pid_file.unlink(missing_ok=True)
        return None
    pid = int(data["pid"])  # type: ignore[call-overload]
    if _is_our_server(pid):
        return pid
    _log.info("removing stale pid file %s (pid %d is not our vLLM server)", paths.pid_file, pid)
    paths.pid_file.unlink(missing_ok=True)
    return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return any(
        _pid_alive(int(p.name)) and _pgid_of(int(p.name)) == pgid
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
    )


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _terminate(pid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the server, SIGKILL its process group after ``grace_s``; wait until gone."""
    leader = _pgid_of(pid) == pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid) and not (leader and _group_alive(pid)):
            return
        time.sleep(0.2)
    _log.warning("pid %d did not exit within %g s, sending SIGKILL", pid, grace_s)
    if leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.1)
