"""Exit codes of ``discount-manager`` and the errors that map onto them."""

from __future__ import annotations

EXIT_CHECK, EXIT_INPUT, EXIT_LLM, EXIT_DATA = 1, 2, 3, 4


class CLIError(Exception):
    """A one-line error with its exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _errors() -> list[tuple[type[BaseException], int]]:
    from graph.approval import ApprovalDecisionError
    from graph.local_llm import LocalLLMError
    from graph.sgr_client import LLMUnavailableError, StructuredOutputError
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
