"""Server-sent events of a running turn, decoupled from the connection that asked for it.

The turn runs in a task of its own that feeds a queue: a shopper who closes the page mid-turn
does not cancel it (the reply is in the session's history when they come back).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from graph.api.errors import status_of
from graph.session import Accepted, NodeEvent, TurnResult

log = logging.getLogger(__name__)

_RUNNING: set[asyncio.Task[None]] = set()  # strong references: tasks outlive their request


def event(name: str, data: Any) -> bytes:
    """One SSE frame (``json.dumps`` writes no newline, so ``data`` is one line)."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def frame(item: Accepted | NodeEvent | TurnResult) -> bytes:
    """The frame of one event of the turn."""
    if isinstance(item, Accepted):
        return event("accepted", {"session": item.session, "user_id": item.user_id})
    if isinstance(item, NodeEvent):
        return event("node", {"node": item.node, "label": item.label})
    return event("turn", item.as_json())


async def detached(events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """The frames of ``events`` (already started: its ``Accepted`` was consumed), produced by
    a task that finishes the turn even if nobody reads them any more."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done = object()

    async def pump() -> None:
        try:
            async for item in events:
                await queue.put(item)
        except Exception as e:  # reported to the client as an ``error`` event
            log.warning("turn failed while streaming: %s", e)
            await queue.put(e)
        finally:
            await queue.put(done)

    task = asyncio.create_task(pump())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    while (item := await queue.get()) is not done:
        if isinstance(item, Exception):
            yield event("error", {"error": str(item), "status": status_of(item) or 500})
        else:
            yield frame(item)
