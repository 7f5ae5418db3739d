"""The code base stays ruff clean (lint and format), so CI enforces the style."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_and_format() -> None:
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_import_rules_hold() -> None:
    """The layer, leaf and independence contracts in pyproject.toml (import-linter)."""
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Contracts: 4 kept, 0 broken." in lint.stdout


def test_every_setting_is_in_the_readme() -> None:
    """One settings object from the environment, every variable documented in the README."""
    from graph.settings import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [
        f"SGR_{n.upper()}" for n in Settings.model_fields if f"`SGR_{n.upper()}`" not in readme
    ]
    assert not missing, f"settings missing from the README table: {missing}"
