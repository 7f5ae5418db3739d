"""Message sets the benchmarks read (shipped in the wheel).

* ``negotiations.jsonl``: a copy of the team's shared development set (15 scenarios);
* ``routing_messages.jsonl``: our own labelled messages, written alongside the router;
* ``routing_holdout.jsonl``: held-out messages, written after a router change, never tuned on.
"""

from pathlib import Path

DATA = Path(__file__).parent
SHARED_SCENARIOS = DATA / "negotiations.jsonl"
OWN_MESSAGES = DATA / "routing_messages.jsonl"
HOLDOUT_MESSAGES = DATA / "routing_holdout.jsonl"
