"""The Responses API's conversation state: the items of the responses the gateway produced,
kept for ``previous_response_id`` with a retention time and a size cap.

Held in each worker's memory: a follow-up that lands on another worker (``--workers N``)
does not find it. Requests with ``store: false`` keep nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec


class ResponseStore:
    def __init__(self, retention_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._retention = retention_s
        self._max = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, list[msgspec.Raw]]] = OrderedDict()

    def put(self, response_id: str, items: list[msgspec.Raw]) -> None:
        """Keep a response's whole conversation: its input items, then its output items."""
        self._items[response_id] = (self._clock() + self._retention, items)
        self._items.move_to_end(response_id)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, response_id: str) -> list[msgspec.Raw] | None:
        entry = self._items.get(response_id)
        if entry is None:
            return None
        expires, items = entry
        if self._clock() >= expires:
            del self._items[response_id]
            return None
        return items
