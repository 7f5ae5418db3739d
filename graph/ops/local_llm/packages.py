"""The venv's state: installed versions, the install marker, and logged commands in the venv."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from graph.ops.local_llm.base import (
    BROKEN_EXTRAS,
    MODEL_DIST,
    MODEL_DIST_VERSION,
    SERVED_MODEL_NAME,
    VLLM_DIST,
    VLLM_VERSION,
    LocalLLMError,
    _child_env,
    _Paths,
)
from graph.progress import Progress

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
