"""Readable SGR audit trail: the view a pricing analyst uses to answer "why X %?"."""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any


def format_record(r: dict[str, Any]) -> list[str]:
    """Lines for one SGR call: header, validated fields, errors, policy cap and clamp."""
    lines = [
        f"  {r['node']} · {r['schema']} · {r['dialect']} · {r['model']} · "
        f"{r['latency_ms']:.0f} ms · tokens {r['prompt_tokens']}+{r['completion_tokens']}"
        f" · repairs {r['repairs']}"
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
    """Turn-by-turn text of the audit records kept in a session's state."""
    lines: list[str] = []
    for turn, recs in groupby(records, key=lambda r: r.get("turn", 0)):
        lines.append(f"== turn {turn}")
        for r in recs:
            lines += format_record(r)
    return "\n".join(lines)
