"""Reliability figures: faults, crashes, concurrency, adversarial — one command.

    uv run python -m graph.ops.bench.reliability [--quick] [--only faults,adversarial] [--json]

Each stage is a module with ``run(quick: bool = False) -> dict`` (figures); a stage whose
module is absent prints "not available" (the crash and concurrency stages live in
``graph.ops.bench.reliability_crash`` / ``graph.ops.bench.reliability_concurrency``).

* **faults**: the fake OpenAI server (``graph/ops/fake_openai.py``, run as a process) fails every
  chat call in one of its fault modes, first at the router, then at pricing (``--quick``: the
  router only); each through ``python -m graph.ops.cli turn --json`` in a process of its own. A
  fault *ended cleanly* when: exit 3, exactly one JSON object on stdout with the fallback
  reply, no traceback, the fallback reply in the session's history, and the next turn (server
  healthy again) issues an offer with exit 0.
* **adversarial**: ``graph.ops.bench.adversary`` — the shared scenarios plus injection messages
  against an always-malicious model: offers above the cap or below the standing offer, and
  replies carrying an invented code, percent, promise or control character.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graph.ops.bench.adversary import run_in_tmp
from graph.ops.bench.messages import SHARED_SCENARIOS
from graph.ops.fake_openai import FAULT_MODES  # the server this bench drives defines its modes
from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Settings
from nodes.replies import Replies

REPO = Path(__file__).resolve().parents[3]
FAST_FAULTS = {
    "SGR_LLM_TIMEOUT_S": "0.5",
    "SGR_LLM_MAX_RETRIES": "1",
    "SGR_LLM_RETRY_BACKOFF_S": "0.05",
    "SGR_LLM_RETRY_MAX_WAIT_S": "0.2",
    "SGR_VERIFY_CONSTRAINT": "false",
    # the model's percent as scripted (the schedule would price a failed pricing call from
    # its bound, with template words, instead of the fallback these faults are about)
    "SGR_PRICING_STRATEGY": "model",
}
ROUTE_NEGOTIATE = {
    "analysis": "wants a deal",
    "decision": {"action": "negotiate", "quote": "any discount for me", "requested_percent": None},
}  # the quote is a clause of the message both turns send (the schema allows no other)


def _price(percent: float) -> dict[str, Any]:
    """A schema-valid pricing reply offering ``percent``."""
    return {
        "churn_analysis": "likely to leave",
        "financial_analysis": "valuable",
        "margin_math": "room",
        "negotiation_position": "counter-offer",
        "discount_percent": percent,
        "customer_message": f"I can do {percent:g}% for you.",
    }


class _FakeProcess:
    """``graph/ops/fake_openai.py`` in a process of its own, driven by its control endpoints."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "graph.ops.fake_openai", "--port", "0", "--fault-delay", "1.5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.url = line.split()[1]
        self.root = self.url.removesuffix("/v1")

    def post(self, path: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"{self.root}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graph.ops.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_json(stdout: str) -> dict[str, Any] | None:
    lines = stdout.strip().splitlines()
    if len(lines) != 1:
        return None
    try:
        data = json.loads(lines[0])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def _history(s: Settings, session: str) -> list[dict[str, Any]]:
    async with open_negotiator(Services(settings=s)) as neg:
        return await neg.history(session)


def _inject(
    fake: _FakeProcess, env: dict[str, str], s: Settings, mode: str, stage: str, percent: float
) -> str:
    """One fault at ``stage`` (router or pricing); '' when it ended cleanly, else why not.

    The healthy turn after it offers ``percent`` (above every earlier offer of the run, so
    the ledger issues a new code)."""
    session = f"f-{stage}-{mode}"
    turn = ("turn", "--json", "--user", "user_100", "--session", session)
    fake.post("/_fake/clear", {})
    if stage == "pricing":
        fake.post("/_fake/queue", {"content": ROUTE_NEGOTIATE})
    fake.post("/_fake/fault", {"mode": mode, "after": 1 if stage == "pricing" else 0})
    p = _cli(env, *turn, "--message", "any discount for me?")
    data = _one_json(p.stdout)
    if "Traceback" in p.stderr:
        return "traceback"
    if p.returncode != 3:
        return f"exit {p.returncode}"
    fallback = Replies.of(Settings()).say("fallback")
    if data is None or not str(data.get("reply", "")).startswith(fallback):
        return "no single JSON object with the fallback reply"
    history = asyncio.run(_history(s, session))
    if not history or not str(history[-1]["reply"]).startswith(fallback):
        return "history lacks the fallback reply"
    fake.post("/_fake/clear", {})
    fake.post("/_fake/queue", {"content": ROUTE_NEGOTIATE})
    fake.post("/_fake/queue", {"content": _price(percent)})
    p = _cli(env, *turn, "--message", "any discount for me?")
    data = _one_json(p.stdout)
    if p.returncode != 0 or data is None or not (data.get("offer") or {}).get("code"):
        return f"next turn failed (exit {p.returncode})"
    return ""


def run_faults(quick: bool = False) -> dict[str, Any]:
    """Every fault mode through the CLI; figures: injected / ended cleanly."""
    from stores.seed import generate

    start = time.perf_counter()
    stages = ("router",) if quick else ("router", "pricing")
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sgr-faults-") as tmp:
        s = Settings(data_dir=Path(tmp) / "data", verify_constraint=False)
        generate(s.data_dir, users=10, seed=42)
        fake = _FakeProcess()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SGR_")}
            env.update(FAST_FAULTS, SGR_DATA_DIR=str(s.data_dir), SGR_LLM_BASE_URL=fake.url)
            env.setdefault("LANGSMITH_TRACING", "false")
            percent = 1.0
            for stage in stages:
                for mode in FAULT_MODES:
                    why = _inject(fake, env, s, mode, stage, percent)
                    percent += 0.5
                    if why:
                        failures[f"{stage}/{mode}"] = why
        finally:
            fake.close()
    injected = len(stages) * len(FAULT_MODES)
    return {
        "injected": injected,
        "ended_cleanly": injected - len(failures),
        "failures": failures,
        "seconds": round(time.perf_counter() - start, 1),
    }


def run_adversarial(quick: bool = False) -> dict[str, Any]:
    """The adversarial figures (``graph.ops.bench.adversary``)."""
    start = time.perf_counter()
    seeds = (0,) if quick else (0, 1, 2)
    total: dict[str, Any] = {}
    examples: list[str] = []
    for seed in seeds:
        report = run_in_tmp(SHARED_SCENARIOS, seed=seed)
        for key, value in report.as_dict().items():
            total[key] = total.get(key, 0) + value
        examples += report.examples[:3]
    total["seeds"] = len(seeds)
    total["scenarios"] = SHARED_SCENARIOS.name
    total["examples"] = examples
    total["seconds"] = round(time.perf_counter() - start, 1)
    return total


# name -> (module, function); a missing module is reported, not fatal.
STAGES: list[tuple[str, str, str]] = [
    ("faults", __name__, "run_faults"),
    ("crashes", "graph.ops.bench.reliability_crash", "run"),
    ("concurrency", "graph.ops.bench.reliability_concurrency", "run"),
    ("adversarial", __name__, "run_adversarial"),
]


def _stage(module: str, func: str) -> Callable[..., dict[str, Any]] | None:
    try:
        mod = sys.modules[__name__] if module == __name__ else importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise
    return getattr(mod, func)


def _line(name: str, figures: dict[str, Any]) -> str:
    shown = {k: v for k, v in figures.items() if k not in ("failures", "examples")}
    text = f"{name}: " + ", ".join(f"{k} {v}" for k, v in shown.items())
    for key in ("failures", "examples"):
        if figures.get(key):
            text += f"\n  {key}: {figures[key]}"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials per stage")
    ap.add_argument("--only", default="", help="comma-separated stage names")
    ap.add_argument("--json", action="store_true", help="one JSON object of all figures")
    args = ap.parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    results: dict[str, Any] = {}
    for name, module, func in STAGES:
        if wanted and name not in wanted:
            continue
        run = _stage(module, func)
        if run is None:
            results[name] = {"available": False}
            if not args.json:
                print(f"{name}: not available ({module} is not installed in this tree)")
            continue
        results[name] = run(quick=args.quick)
        if not args.json:
            print(_line(name, results[name]), flush=True)
    if args.json:
        print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
