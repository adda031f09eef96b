"""The Responses API's conversation state: the items of the responses the gateway produced,
kept for ``previous_response_id`` with a retention time and a size cap.

Each response keeps only its own turn (the request's new input items and its output
items) and the id of the response it continued, so a long conversation costs memory in
proportion to its length, not its square; ``get`` walks the links back. Storing a turn
refreshes the turns it continues, so a conversation in use is not evicted from under it;
if one of them is gone anyway, the chain counts as unknown rather than silently shortened.

Each turn belongs to the principal that made it: as at OpenAI, anyone else holding the id
gets "not found", so an id seen in a log does not open someone's conversation.

Held in each worker's memory: a follow-up that lands on another worker (``--workers N``)
does not find it. Requests with ``store: false`` keep nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec


class _Turn:
    __slots__ = ("expires", "previous", "items", "owner")

    def __init__(self, expires: float, previous: str | None, items: list[msgspec.Raw], owner: str | None) -> None:
        self.expires = expires
        self.previous = previous
        self.items = items
        self.owner = owner


class ResponseStore:
    def __init__(self, retention_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._retention = retention_s
        self._max = max_entries
        self._clock = clock
        self._turns: OrderedDict[str, _Turn] = OrderedDict()

    def put(self, response_id: str, items: list[msgspec.Raw], previous: str | None = None,
            owner: str | None = None) -> None:
        """Keep a response's own turn (its new input items, then its output items), continuing
        ``previous``, for ``owner`` alone to continue."""
        expires = self._clock() + self._retention
        self._turns[response_id] = _Turn(expires, previous, items, owner)
        self._turns.move_to_end(response_id)
        seen = {response_id}
        while previous is not None and previous not in seen:  # keep the turns it continues alive with it
            seen.add(previous)
            turn = self._turns.get(previous)
            if turn is None:
                break
            turn.expires = expires
            self._turns.move_to_end(previous)
            previous = turn.previous
        while len(self._turns) > self._max:
            self._turns.popitem(last=False)

    def get(self, response_id: str, owner: str | None = None) -> list[msgspec.Raw] | None:
        """The whole conversation up to and including ``response_id``, oldest first; None if unknown
        or not ``owner``'s."""
        now = self._clock()
        chain: list[list[msgspec.Raw]] = []
        seen: set[str] = set()
        current: str | None = response_id
        while current is not None:
            turn = self._turns.get(current)
            if turn is None or current in seen or turn.owner != owner:
                return None
            if now >= turn.expires:
                del self._turns[current]
                return None
            seen.add(current)
            chain.append(turn.items)
            current = turn.previous
        return [item for items in reversed(chain) for item in items]
