"""The upstream client's tests run on both event loops: the gateway runs on uvloop when it
can and on asyncio otherwise, and their transports differ (writes after a close, pausing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional
    uvloop = None

_BOTH_LOOPS = ("test_upstream_client.py",)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None and item.path.name in _BOTH_LOOPS:
        loops["uvloop"] = uvloop.new_event_loop
    return loops
