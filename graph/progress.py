"""The one callback type for progress notes and output lines: ``Progress``."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]
"""Receives one line of text (a progress note, or a line to print)."""
