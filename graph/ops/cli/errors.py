"""Exit codes of ``discount-manager`` and the errors that map onto them."""

from __future__ import annotations

from typing import Any

EXIT_OK, EXIT_CHECK, EXIT_INPUT, EXIT_LLM, EXIT_DATA = 0, 1, 2, 3, 4


class CLIError(Exception):
    """A one-line error with its exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _errors() -> list[tuple[type[BaseException], int]]:
    from graph.approval import ApprovalDecisionError
    from graph.ops.local_llm import LocalLLMError
    from graph.sgr import LLMUnavailableError, StructuredOutputError
    from graph.validation import InputError
    from stores.errors import OfferError, StoreNotFoundError

    return [
        (InputError, EXIT_INPUT),
        (ApprovalDecisionError, EXIT_INPUT),
        (OfferError, EXIT_INPUT),
        (LLMUnavailableError, EXIT_LLM),
        (StructuredOutputError, EXIT_LLM),
        (LocalLLMError, EXIT_DATA),
        (StoreNotFoundError, EXIT_DATA),
    ]


def exit_code(error: BaseException) -> int | None:
    """The exit code of a known error (printed as one line), ``None`` for a bug."""
    for kind, code in _errors():
        if isinstance(error, kind):
            return code
    return None


def turn_exit_code(result: Any) -> int:
    """0 for a turn that ran, 3 for one that ended on the typed LLM fallback reply (its JSON
    is printed all the same: the reply, the error and ``status: "fallback"``)."""
    return EXIT_LLM if getattr(result, "status", None) == "fallback" else EXIT_OK
