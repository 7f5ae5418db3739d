"""The wheel is the product: built, installed in a fresh venv, its tools run from it alone.

Catches what a checkout hides: modules importing ``tests.*``, data files (prompts, templates,
message sets, SQL) left out of the wheel, paths computed from the repository layout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.reliability


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        pytest.fail("uv is needed to build and install the wheel", pytrace=False)
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv outside the checkout with only the built wheel installed; its ``bin``."""
    work = tmp_path_factory.mktemp("wheel")
    uv = _uv()
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(work / "dist")], cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    wheel = next((work / "dist").glob("sgr_discount_manager-*.whl"))
    venv = work / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    str(wheel)], check=True, capture_output=True)  # fmt: skip
    return venv / "bin"


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SGR_", "PYTHONPATH"))}
    return {**env, "SGR_DATA_DIR": str(work / "data")}


def test_the_wheel_ships_no_tests_and_every_data_file(installed: Path) -> None:
    py = installed / "python"
    code = (
        "import importlib.util, json, graph, nodes, prompts, stores;"
        "from pathlib import Path;"
        "site = Path(graph.__file__).parent.parent;"
        "print(json.dumps({'tests': importlib.util.find_spec('tests') is not None,"
        "'files': sorted(str(p.relative_to(site)) for p in site.rglob('*')"
        " if p.suffix in {'.md', '.toml', '.json', '.jsonl', '.sql', '.html', '.js', '.css'}"
        " and p.parts[len(site.parts)] in {'graph', 'nodes', 'stores', 'prompts'})}))"
    )
    out = json.loads(subprocess.run([str(py), "-c", code], cwd="/", check=True,
                                    capture_output=True, text=True).stdout)  # fmt: skip
    assert out["tests"] is False
    files = set(out["files"])
    for needed in (
        "prompts/router.md",
        "prompts/replies.toml",
        "prompts/router_actions.toml",
        "prompts/concession_cues.json",
        "stores/sql/sqlite/ledger.sql",
        "stores/sql/postgres/ledger.sql",
        "graph/ops/bench/messages/negotiations.jsonl",
    ):
        assert needed in files, needed


def test_the_installed_bench_runs(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(installed / "discount-manager"), "bench", "--quick", "--json",
         "--stages", "overhead,tokens", "--work-dir", str(tmp_path / "w")],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["overhead"]["modes"]["sync"]["runner"]["n"] > 0
    assert figures["tokens"]["total"] > 0


def test_the_installed_reliability_command_runs(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(installed / "python"), "-m", "graph.ops.bench.reliability", "--quick", "--json",
         "--only", "adversarial"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["adversarial"]["above_cap"] == 0, figures
