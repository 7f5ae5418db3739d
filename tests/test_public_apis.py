"""No private name of LangGraph or LangChain is imported or touched by our code.

A private name (``_executor``, ``_generate``, ``_default_executor``...) changes without
notice in a minor release; patching one is a defect. Checked on the syntax tree of every
module the wheel ships: imports from ``langgraph*`` / ``langchain*`` / ``langsmith`` naming a
private module or name, attribute access of a private name on anything imported from them,
and ``getattr``/``setattr`` with a private name as a string.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graph", "nodes", "stores", "prompts")
THIRD_PARTY = ("langgraph", "langchain", "langsmith", "langgraph_runtime_inmem", "langgraph_api")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _ours(module: str) -> bool:
    return module.split(".")[0].startswith(THIRD_PARTY)


def violations(source: str) -> list[str]:
    """Private LangGraph/LangChain names a module's source imports or touches."""
    tree = ast.parse(source)
    bound: set[str] = set()  # names bound to their modules or objects
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _ours(alias.name):
                    if any(_private(p) for p in alias.name.split(".")):
                        found.append(f"import {alias.name}")
                    bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and _ours(node.module):
            if any(_private(p) for p in node.module.split(".")):
                found.append(f"from {node.module} import ...")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"from {node.module} import {alias.name}")
                bound.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute | ast.Call | ast.Subscript):
                root = root.value if not isinstance(root, ast.Call) else root.func
            if isinstance(root, ast.Name) and root.id in bound:
                found.append(f"{root.id}….{node.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append(f"{node.func.id}(…, {node.args[1].value!r})")
    return found


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_langgraph_or_langchain_name(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from langgraph.pregel import _executor",
        "from langgraph.pregel._executor import BackgroundExecutor",
        "from langchain_core.tracers.context import _tracing_v2_is_enabled",
        "from langchain_openai import ChatOpenAI\nChatOpenAI()._generate([])",
        "import langgraph_runtime_inmem.ops as ops\nops.Runs._next = None",
        "loop = object()\ngetattr(loop, '_default_executor', None)",
    ],
)
def test_the_check_catches_what_the_old_code_did(source: str) -> None:
    assert violations(source)
