"""What the CLI prints: error and progress lines, JSON, turns, approvals, ledger, audit."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from graph.validation import BIDI_CHARS, strip_controls

# Characters a terminal acts on; escaped (\uXXXX) in JSON output, removed from text output.
_JSON_UNSAFE = {ord(c): f"\\u{ord(c):04x}" for c in BIDI_CHARS + "\u2028\u2029"}
_JSON_UNSAFE.update({c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)})


def safe(value: Any) -> str:
    """``value`` as text a terminal shows as it is: no escapes, controls or bidi overrides."""
    return strip_controls(str(value))


def error(text: str) -> None:
    """One line on stderr."""
    print(safe(text), file=sys.stderr, flush=True)


def progress(text: str) -> None:
    """A progress note on stderr (stdout stays for results)."""
    print(f"  … {safe(text)}", file=sys.stderr, flush=True)


def dump(obj: Any) -> None:
    """``obj`` as one line of JSON (control characters escaped, bidi controls too)."""
    print(json.dumps(obj, ensure_ascii=False, default=str).translate(_JSON_UNSAFE))


def print_turn(result: Any, *, verbose: bool = False) -> None:
    """A turn's reply, offer and error."""
    if result.reply:
        print(f"agent> {safe(result.reply)}")
    if result.offer and result.offer.get("code"):
        o = result.offer
        pct, cap = o["discount_percent"], o["cap_percent"]
        print(f"       [offer {pct:g}% (cap {cap:g}%) code {o['code']}]")
    if result.error:
        print(f"       [error: {safe(result.error)}]")
    if verbose:
        print(f"       [route {result.route}, {result.latency_s:.1f}s]")


def print_approval(approval: dict[str, Any]) -> None:
    """The approval request a manager decides on."""
    print("\n  MANAGER APPROVAL NEEDED")
    print(
        f"  customer {approval['user_id']}, cart {approval['cart_value']:.2f}, "
        f"cap {approval['cap_percent']:g}%, proposed {approval['proposed_percent']:g}%"
    )
    for reason in approval["reasons"]:
        print(f"  - {safe(reason)}")
    for key, value in (approval.get("reasoning") or {}).items():
        print(f"    {safe(key)}: {safe(value)}")


def print_history(turns: list[dict[str, Any]]) -> None:
    """A session's turns as read back from the checkpoints."""
    for t in turns:
        extra = f" [{t['route']}" + (f", {t['status']}" if t["status"] else "") + "]"
        print(f"[{t['turn']}] you> {safe(t['customer'])}")
        print(f"    agent{extra if t['route'] else ''}> {safe(t['reply'])}")


def print_offers(offers: Iterable[Any]) -> None:
    """One line per ledger offer."""
    offers = list(offers)
    if not offers:
        print("no offers")
    for o in offers:
        print(
            f"{o.code}  {o.user_id:<10} {o.discount_percent:>5g}%  {o.amount:>8.2f}  "
            f"{o.status:<16} session {o.session_id} turn {o.turn}  "
            f"expires {o.expires_at:%Y-%m-%d %H:%M}"
        )


def format_record(r: dict[str, Any]) -> list[str]:
    """Lines for one SGR call: header, validated fields, errors, policy cap and clamp."""
    lines = [
        f"  {r.get('node')} · {r.get('schema')} · {r.get('dialect', '-')} · "
        f"{r.get('model', '-')} · {float(r.get('latency_ms') or 0):.0f} ms · tokens "
        f"{r.get('prompt_tokens', 0)}+{r.get('completion_tokens', 0)}"
        f" · repairs {r.get('repairs', 0)}"
    ]
    for key, value in (r.get("parsed") or {}).items():
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        lines.append(f"    {key}: {text}")
    lines += [f"    ! {err}" for err in r.get("errors") or []]
    policy = r.get("policy")
    if policy:
        lines.append(
            f"    policy: model {policy.get('model_percent')} -> final "
            f"{policy.get('final_percent')} (cap {policy.get('cap_percent')}, standing "
            f"{policy.get('standing_percent')}, clamped {policy.get('clamped')})"
        )
    return lines


def format_audit(records: list[dict[str, Any]]) -> str:
    """Turn-by-turn text of a session's audit records (from the append-only audit table):
    the view a pricing analyst uses to answer "why X %?"."""
    lines: list[str] = []
    for turn, recs in groupby(records, key=lambda r: r.get("turn", 0)):
        lines.append(f"== turn {turn}")
        for r in recs:
            lines += format_record(r)
    return safe("\n".join(lines))
