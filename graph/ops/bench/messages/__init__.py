"""Message sets the benchmarks read (shipped in the wheel).

* ``negotiations.jsonl``: a copy of the team's shared development set (15 scenarios);
* ``routing_messages.jsonl``: our own labelled messages, written alongside the router;
* ``routing_holdout.jsonl``: held-out messages, written after an earlier router change;
* ``routing_holdout_2.jsonl``: held-out conversations written after the code learnt to hear
  plain asks and acceptances (issue 19), never tuned on.
"""

from pathlib import Path

DATA = Path(__file__).parent
SHARED_SCENARIOS = DATA / "negotiations.jsonl"
OWN_MESSAGES = DATA / "routing_messages.jsonl"
HOLDOUT_MESSAGES = DATA / "routing_holdout.jsonl"
HOLDOUT_2 = DATA / "routing_holdout_2.jsonl"
