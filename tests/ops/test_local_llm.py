"""Fast tests of graph.ops.local_llm that need no vLLM install (pid files, ports, health check)."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graph.ops import local_llm
from graph.ops.local_llm import base, installer, pids, process
from graph.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(local_llm_dir=tmp_path / "llm", local_llm_port=_free_port())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not vLLM."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _pid_file(settings: Settings) -> Path:
    return Path(settings.local_llm_dir).resolve() / "server.pid"


def _write_pid(settings: Settings, pid: int) -> Path:
    path = _pid_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "base_url": "http://127.0.0.1:1/v1"}))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------- pid file


def test_nothing_installed_nothing_running(settings: Settings) -> None:
    st = local_llm.status(settings)
    assert not st.installed and not st.running and not st.ready
    assert st.pid is None
    assert st.base_url == f"http://127.0.0.1:{settings.local_llm_port}/v1"
    assert st.model == local_llm.SERVED_MODEL_NAME
    assert local_llm.stop(settings) is False
    assert local_llm.logs(settings) == ""


def test_stale_pid_file_is_removed(settings: Settings) -> None:
    path = _write_pid(settings, _dead_pid())
    assert local_llm.status(settings).running is False
    assert not path.exists()
    _write_pid(settings, _dead_pid())
    assert local_llm.stop(settings) is False
    assert not path.exists()


def test_garbage_pid_file_is_removed(settings: Settings) -> None:
    path = _pid_file(settings)
    path.parent.mkdir(parents=True)
    path.write_text("not a pid")
    assert local_llm.stop(settings) is False
    assert not path.exists()


def test_plain_integer_pid_file_is_read(
    settings: Settings, sleeper: subprocess.Popen[bytes]
) -> None:
    path = _pid_file(settings)
    path.parent.mkdir(parents=True)
    path.write_text(f"{sleeper.pid}\n")
    paths = base._paths(settings)
    assert pids._read_pid_file(paths) == {"pid": sleeper.pid}


def test_pid_that_is_not_ours_is_not_killed(
    settings: Settings, sleeper: subprocess.Popen[bytes]
) -> None:
    path = _write_pid(settings, sleeper.pid)
    assert local_llm.stop(settings) is False
    assert sleeper.poll() is None, "a foreign process was signalled"
    assert not path.exists()
    assert local_llm.status(settings).running is False


def test_our_process_is_stopped(settings: Settings, tmp_path: Path) -> None:
    # A stand-in whose command line names vllm, in its own session like the real server.
    script = tmp_path / "fake_vllm_server.py"
    script.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        path = _write_pid(settings, proc.pid)
        assert local_llm.status(settings).running is True
        assert local_llm.stop(settings) is True
        assert proc.wait(timeout=5) is not None
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_ignored_then_sigkill(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    script = tmp_path / "stubborn_vllm.py"
    script.write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], start_new_session=True, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        pids._terminate(proc.pid, grace_s=0.5)
        assert not pids._pid_alive(proc.pid)  # (it also reaped our child)
        assert "sending SIGKILL" in caplog.text
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    # Do not wait(): the child stays a zombie until _pid_alive reaps it.
    deadline = 50
    while deadline and Path(f"/proc/{proc.pid}/stat").exists():
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            break
        threading.Event().wait(0.1)
        deadline -= 1
    assert pids._pid_alive(proc.pid) is False
    proc.wait()  # already reaped by _pid_alive; lets Popen know


# --------------------------------------------------------------------------- ports


def test_port_in_use_detection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert local_llm.port_in_use("127.0.0.1", port) is True
    assert local_llm.port_in_use("127.0.0.1", port) is False


def test_start_refuses_busy_port(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_is_installed", lambda _paths: True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", settings.local_llm_port))
        s.listen()
        with pytest.raises(local_llm.LocalLLMError, match="already in use"):
            local_llm.start(settings)
    assert not _pid_file(settings).exists()


def test_start_refuses_when_not_installed(settings: Settings) -> None:
    with pytest.raises(local_llm.LocalLLMError, match="local-llm install"):
        local_llm.start(settings)


def test_start_refuses_when_memory_short(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "_is_installed", lambda _paths: True)
    monkeypatch.setattr(process, "_available_memory", lambda: 1 * base.GB)
    with pytest.raises(local_llm.LocalLLMError, match="free memory"):
        local_llm.start(settings)


def test_install_refuses_without_disk(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "_free_bytes", lambda _path: 1 * base.GB)
    with pytest.raises(local_llm.LocalLLMError, match="disk space"):
        local_llm.install(settings, progress=lambda _m: None)
    assert not (Path(settings.local_llm_dir) / "venv").exists()


def test_install_is_quick_when_marker_matches(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(installer, "_is_installed", lambda _paths: True)
    said: list[str] = []
    result = local_llm.install(settings, progress=said.append)
    assert result.already_installed
    assert any("already installed" in m for m in said)


# --------------------------------------------------------------------------- health check


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if self.path == "/v1/models" else 404
        body = b'{"data": []}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_endpoint_alive(http_server: str) -> None:
    assert local_llm.endpoint_alive(http_server + "/v1") is True
    assert local_llm.endpoint_alive(http_server + "/v1/") is True
    assert local_llm.endpoint_alive(http_server + "/other") is False  # 404


def test_endpoint_dead_port() -> None:
    assert local_llm.endpoint_alive(f"http://127.0.0.1:{_free_port()}/v1", timeout=0.5) is False


def test_base_url_for_wildcard_host() -> None:
    s = Settings(local_llm_host="0.0.0.0", local_llm_port=8123)
    assert local_llm.base_url_for(s) == "http://127.0.0.1:8123/v1"


def test_logs_tail(settings: Settings) -> None:
    log = Path(settings.local_llm_dir).resolve() / "server.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert local_llm.logs(settings, lines=2) == "line 98\nline 99\n"


# ------------------------------------------------------- start() with a stand-in server

_FAKE_SERVER = """
import http.server, sys
mode, port = sys.argv[1], int(sys.argv[2])
print("fake vllm starting", mode, flush=True)
if mode == "crash":
    print("RuntimeError: no model here", flush=True)
    sys.exit(3)
if mode == "hang":
    import time
    time.sleep(60)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


@pytest.fixture
def fake_install(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], None]]:
    """Make start() launch a stand-in (its file name contains 'vllm') instead of vLLM."""
    script = tmp_path / "fake_vllm_server.py"
    script.write_text(_FAKE_SERVER)
    monkeypatch.setattr(process, "_is_installed", lambda _paths: True)
    monkeypatch.setattr(process, "_available_memory", lambda: None)
    monkeypatch.setattr(process, "_POLL_S", 0.05)

    def use(mode: str) -> None:
        monkeypatch.setattr(
            process,
            "_server_cmd",
            lambda s, _p: [sys.executable, str(script), mode, str(s.local_llm_port)],
        )

    yield use
    local_llm.stop(settings)


def test_start_waits_then_status_and_stop(
    settings: Settings, fake_install: Callable[[str], None]
) -> None:
    fake_install("serve")
    said: list[str] = []
    info = local_llm.start(settings, progress=said.append, timeout_s=20)
    assert info.base_url == f"http://127.0.0.1:{settings.local_llm_port}/v1"
    assert info.model == local_llm.SERVED_MODEL_NAME
    assert not info.already_running
    assert local_llm.endpoint_alive(info.base_url)
    assert "fake vllm starting" in local_llm.logs(settings)
    assert any("ready" in m for m in said)

    again = local_llm.start(settings, progress=said.append, timeout_s=20)
    assert again.already_running and again.pid == info.pid

    st = local_llm.status(settings)
    assert st.running and st.ready and st.pid == info.pid

    assert local_llm.stop(settings) is True
    assert not pids._pid_alive(info.pid)
    assert not local_llm.status(settings).running
    assert not local_llm.endpoint_alive(info.base_url, timeout=0.5)


def test_start_reports_early_exit_with_log(
    settings: Settings, fake_install: Callable[[str], None]
) -> None:
    fake_install("crash")
    with pytest.raises(local_llm.LocalLLMError, match="exited with code 3") as exc:
        local_llm.start(settings, progress=lambda _m: None, timeout_s=20)
    assert "no model here" in str(exc.value)
    assert not _pid_file(settings).exists()


def test_start_timeout_kills_server(
    settings: Settings, fake_install: Callable[[str], None]
) -> None:
    fake_install("hang")
    with pytest.raises(local_llm.LocalLLMError, match="did not answer") as exc:
        local_llm.start(settings, progress=lambda _m: None, timeout_s=0.5)
    assert "fake vllm starting hang" in str(exc.value)
    assert not _pid_file(settings).exists()
    assert not any(
        "fake_vllm_server.py" in pids._cmdline(int(p.name))
        and str(settings.local_llm_port) in pids._cmdline(int(p.name))
        and pids._pid_alive(int(p.name))
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
    )


def test_convert_script_is_a_file_the_venv_can_run() -> None:
    script = installer.CONVERT_SCRIPT
    assert script.is_file() and script.parent == Path(local_llm.__file__).parent
    compile(script.read_text(), str(script), "exec")  # torch is imported only inside main()


def test_a_local_llm_dir_that_is_a_link_elsewhere_is_refused(tmp_path: Path) -> None:
    """The checkout once committed ``.local-llm`` as a link to a path outside it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / ".local-llm"
    link.symlink_to(elsewhere)
    with pytest.raises(local_llm.LocalLLMError, match="is a link"):
        local_llm.status(Settings(local_llm_dir=link))
