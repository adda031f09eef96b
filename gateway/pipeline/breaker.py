"""Circuit breakers: skip an entity that keeps failing, then probe it.

closed ──N consecutive failures──▶ open ──cool-down over──▶ half-open (one probe)
  ▲                                  ▲                          │
  └──────────── probe succeeds ──────┼──────────────────────────┤
                                     └───── probe fails ────────┘

State is per worker process: each worker learns an entity's health from its own traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum

from gateway import metrics
from gateway.config import CircuitBreakerConfig


class State(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    __slots__ = ("_config", "_clock", "_gauge", "state", "_failures", "_open_until", "_probing")

    def __init__(self, config: CircuitBreakerConfig, clock: Callable[[], float], gauge) -> None:  # type: ignore[no-untyped-def]
        self._config = config
        self._clock = clock
        self._gauge = gauge
        self.state = State.CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    def _set(self, state: State) -> None:
        self.state = state
        self._gauge.set(int(state))

    def allow(self) -> bool:
        """May a request go to this entity now? In half-open, only one probe at a time."""
        if not self._config.enabled or self.state is State.CLOSED:
            return True
        if self.state is State.OPEN:
            if self._clock() < self._open_until:
                return False
            self._set(State.HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        if self.state is not State.CLOSED:
            self._set(State.CLOSED)

    def release(self) -> None:
        """The request ended without a verdict on the entity (the caller went away)."""
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self.state is State.HALF_OPEN or self._failures >= self._config.failures:
            self._open_until = self._clock() + self._config.cooldown_s
            self._set(State.OPEN)


class Breakers:
    """One breaker per (endpoint, entity), made on first use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, endpoint: str, entity: str, config: CircuitBreakerConfig) -> CircuitBreaker:
        key = (endpoint, entity)
        breaker = self._breakers.get(key)
        if breaker is None:
            gauge = metrics.CIRCUIT_STATE.labels(endpoint, entity)
            gauge.set(0)
            breaker = self._breakers[key] = CircuitBreaker(config, self._clock, gauge)
        return breaker
