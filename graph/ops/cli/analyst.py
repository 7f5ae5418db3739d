"""Analyst commands: ``simulate`` (buyer personas through the graph) and ``report`` (ledger)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, get_args

from graph.ops.cli.errors import EXIT_INPUT, CLIError
from graph.ops.cli.render import dump, progress
from graph.settings import Settings

STRATEGIES: tuple[str, ...] = get_args(Settings.model_fields["pricing_strategy"].annotation)


def _csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def add_analyst_parsers(sub: Any) -> None:
    """Register ``simulate`` and ``report`` on the ``discount-manager`` subparsers."""
    sp = sub.add_parser("simulate", help="buyer personas x demo customers, deal metrics")
    sp.add_argument("--strategy", default="model,schedule", help="comma list of strategies")
    sp.add_argument("--endpoint", help="OpenAI-compatible URL (default: deterministic fake)")
    sp.add_argument("--personas", help="comma list of persona names (default: all)")
    sp.add_argument("--customers", help="comma list of demo customers (default: all ten)")
    sp.add_argument("--keep-data", type=Path, help="write the run's data dirs here")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_simulate)

    sp = sub.add_parser("report", help="what the agent gave away, to whom; approvals, fallbacks")
    sp.add_argument("--since", help="ISO date or time (UTC if no offset), e.g. 2026-11-20")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_report)


# -- simulate ---------------------------------------------------------------------------

SIM_COLUMNS = (
    ("persona", "persona", "{}"),
    ("runs", "runs", "{}"),
    ("deals", "deal_rate", "{:.0%}"),
    ("avg %", "avg_discount_percent", "{:.2f}"),
    ("avg money", "avg_discount_amount", "{:.2f}"),
    ("÷cap", "discount_to_cap", "{:.2f}"),
    ("÷reserv.", "discount_to_reservation", "{:.2f}"),
    ("rounds", "avg_rounds", "{:.2f}"),
    ("walk", "walk_aways", "{}"),
    ("viol.", "violations", "{}"),
    ("fallb.", "fallbacks", "{}"),
    ("unsol.", "unsolicited_offers", "{}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def sim_table(data: dict[str, Any]) -> str:
    """The terminal table: one block per strategy (personas, then the total)."""
    head = [c[0] for c in SIM_COLUMNS]
    rows: list[list[str]] = []
    for name, block in data["strategies"].items():
        rows.append([f"[{name}]"] + [""] * (len(head) - 1))
        for p in block["personas"]:
            rows.append([_cell(p.get(k), f) for _, k, f in SIM_COLUMNS])
        total = {**block, "persona": f"TOTAL {name}"}
        rows.append([_cell(total.get(k), f) for _, k, f in SIM_COLUMNS])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    ]
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace, s: Settings) -> int:
    from graph.ops.sim.personas import load_personas, select
    from graph.ops.sim.runner import DEMO_CUSTOMERS, fake_llm_factory, run_simulation

    strategies = _csv(args.strategy)
    bad = [x for x in strategies if x not in STRATEGIES]
    if not strategies or bad:
        raise CLIError(f"--strategy takes a comma list of {', '.join(STRATEGIES)}", EXIT_INPUT)
    try:
        personas = select(load_personas(), _csv(args.personas) or None)
    except ValueError as e:
        raise CLIError(str(e), EXIT_INPUT) from e
    customers = _csv(args.customers) or list(DEMO_CUSTOMERS)
    unknown = [c for c in customers if c not in DEMO_CUSTOMERS]
    if unknown:
        raise CLIError(f"not a demo customer: {', '.join(unknown)}", EXIT_INPUT)

    factory, model = fake_llm_factory, "fake-schema (deterministic)"
    if args.endpoint:
        from graph.services import build_structured_llm

        s = s.model_copy(update={"llm_base_url": args.endpoint})
        llm = build_structured_llm(s)  # LLMUnavailableError: exit 3

        def factory(_settings: Settings) -> Any:
            return llm

        model = f"{llm.model_name} at {args.endpoint}"

    progress(f"simulating {len(personas)} personas x {len(customers)} customers, {model}")
    with tempfile.TemporaryDirectory(prefix="sgr-sim-") as tmp:
        workdir = args.keep_data or Path(tmp)
        sim = run_simulation(
            s,
            workdir,
            strategies=strategies,
            personas=personas,
            customers=customers,
            llm_factory=factory,
            model_name=model,
            progress=progress,
        )
    data = sim.as_json()
    if args.json:
        dump(data)
    else:
        print(sim_table(data))
        print(
            f"\n{model}; approvals auto-approved; deal metrics over honest buyers, "
            f"violations/fallbacks/unsolicited offers over all personas; {sim.seconds:.1f}s"
        )
    return 0


# -- report -----------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: Any) -> str:
    return "-" if value is None else f"{round(value, 2):g}"


def print_report(r: dict[str, Any]) -> None:
    """The report as text."""
    print(f"since {r['since'] or 'the beginning'} (generated {r['generated_at'][:19]} UTC)")
    print(
        f"offers issued {r['offers_issued']}, accepted {r['offers_accepted']} "
        f"(acceptance {_pct(r['acceptance_rate'])}); given away {r['discount_given_total']:.2f} "
        f"of {r['cap_amount_total']:.2f} at cap"
    )
    print(
        f"accepted: avg {_num(r['avg_discount_percent'])}% vs cap {_num(r['avg_cap_percent'])}% "
        f"(÷cap {_num(r['discount_to_cap'])}), avg {_num(r['avg_discount_amount'])} per deal; "
        f"all issued: avg {_num(r['avg_offered_percent'])}%"
    )
    grouping = "grouped by churn band and inventory at issue"
    if current := r["grouped_by_current_values"]:
        grouping += f"; {current} older offer(s) without them by the customer's current values"
    print(grouping)
    for title, key in (("churn band", "by_churn_band"), ("inventory", "by_inventory")):
        print(f"by {title}:")
        for name, g in r[key].items():
            n = g["grouped_by_current_values"]
            print(
                f"  {name:<9} issued {g['offers_issued']:>4}  accepted {g['accepted']:>4} "
                f"({_pct(g['acceptance_rate'])})  avg {_num(g['avg_discount_percent'])}% "
                f"vs cap {_num(g['avg_cap_percent'])}%  given {g['discount_given_total']:.2f}"
                + (f"  ({n} by current values)" if n else "")
            )
    a = r["approvals"]
    print(
        f"approvals: pending {a['pending']}, approved {a['approved']}, rejected {a['rejected']}, "
        f"expired while pending {a['expired_pending']}; median wait "
        f"{_num(a['median_wait_s'])} s ({a['median_wait_source']}); median age of pending "
        f"{_num(a['median_pending_age_s'])} s"
    )
    f = r["fallbacks"]
    print(
        f"fallbacks: {f['fallback_turns']} of {f['turns']} turns ({_pct(f['share_of_turns'])}), "
        f"{f['failed_calls']} of {f['calls']} SGR calls"
    )
    for c in f["causes"]:
        print(f"  {c['count']:>4} x {c['node']}: {c['cause']}")


def cmd_report(args: argparse.Namespace, s: Settings) -> int:
    from graph.services import Services
    from graph.validation import parse_since

    report = Services(settings=s).report(since=parse_since(args.since, "--since"))
    if args.json:
        dump(report)
    else:
        print_report(report)
    return 0
