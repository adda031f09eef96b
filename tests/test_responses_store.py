"""The Responses state store: one turn per response, chained by previous_response_id."""

from __future__ import annotations

import msgspec

from gateway.responses_store import ResponseStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def items(*texts: str) -> list[msgspec.Raw]:
    return [msgspec.Raw(msgspec.json.encode({"text": t})) for t in texts]


def texts(raw: list[msgspec.Raw] | None) -> list[str] | None:
    return None if raw is None else [msgspec.json.decode(r)["text"] for r in raw]


def test_a_chain_is_rebuilt_oldest_first_from_turns_stored_once() -> None:
    store = ResponseStore(retention_s=60, max_entries=100)
    store.put("r1", items("q1", "a1"))
    store.put("r2", items("q2", "a2"), previous="r1")
    store.put("r3", items("q3", "a3"), previous="r2")
    assert texts(store.get("r3")) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert texts(store.get("r2")) == ["q1", "a1", "q2", "a2"]
    assert [len(t.items) for t in store._turns.values()] == [2, 2, 2]  # noqa: SLF001 - linear, not quadratic


def test_a_chain_missing_a_turn_is_unknown_rather_than_shortened() -> None:
    clock = Clock()
    store = ResponseStore(retention_s=10, max_entries=2, clock=clock)
    store.put("r1", items("q1", "a1"))
    store.put("other", items("x"))
    store.put("other2", items("y"))  # evicts r1, the oldest
    store.put("r2", items("q2", "a2"), previous="r1")
    assert store.get("r2") is None
    clock.now = 11
    assert store.get("other2") is None  # expired


def test_continuing_a_conversation_keeps_its_earlier_turns_alive() -> None:
    clock = Clock()
    store = ResponseStore(retention_s=10, max_entries=3, clock=clock)
    store.put("r1", items("q1"))
    store.put("noise", items("n"))
    clock.now = 8
    store.put("r2", items("q2"), previous="r1")  # refreshes r1's expiry and recency
    store.put("noise2", items("n2"))  # evicts "noise", not r1
    clock.now = 15
    assert texts(store.get("r2")) == ["q1", "q2"]


def test_a_chain_is_found_only_by_its_owner() -> None:
    store = ResponseStore(retention_s=60, max_entries=100)
    store.put("r1", items("q1", "a1"), owner="alice")
    store.put("r2", items("q2", "a2"), previous="r1", owner="alice")
    assert texts(store.get("r2", "alice")) == ["q1", "a1", "q2", "a2"]
    assert store.get("r2", "bob") is None and store.get("r1", None) is None
