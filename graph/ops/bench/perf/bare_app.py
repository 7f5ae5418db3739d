"""The API bench's baseline graph, served by the bench's ``langgraph dev`` beside ours.

The runner's shape (router -> retrieval -> pricing -> offer) with no work: the two LLM nodes
sleep the run's ``configurable["latency"]``. Not in the repo's ``langgraph.json``: the bench
writes its servers' config (``servers.bench_config``).
"""

from __future__ import annotations

from graph.ops.bench.perf.common import BARE_LLM_NODES, BARE_SHAPE, bare_graph

graph = bare_graph(BARE_SHAPE, sleeping=BARE_LLM_NODES, latency=None).compile(name="bench-bare")
