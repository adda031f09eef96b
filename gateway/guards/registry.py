"""The one place a guardrail check is looked up: ``GUARDS[name](parameters)`` builds the
checks of that kind a stage's configuration asks for, and ``checks_for`` lists them all in
the order they run: the local checks first (keywords, the endpoint's patterns, PII), then
the judged ones, which are slower and see the text as masked by the checks before them
(so PII that is masked never reaches the judge)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import GuardrailParameters
from gateway.guards import keywords, patterns, pii, safety, topics
from gateway.guards.verdict import Check

GUARDS: dict[str, Callable[[GuardrailParameters], list[Check]]] = {
    "invalid_keywords": keywords.checks,
    "patterns": patterns.checks,
    "pii": pii.checks,
    "safety": safety.checks,
    "valid_topics": topics.checks,
}

#: Built checks per parameters object; the object is part of the entry, so an endpoint
#: changed through the admin API (a new object) misses the cache.
_built: dict[int, tuple[GuardrailParameters, tuple[Check, ...]]] = {}
_BUILT_MAX = 4096


def checks_for(params: GuardrailParameters) -> tuple[Check, ...]:
    """The checks ``params`` configures, built once (patterns compiled, keywords joined)."""
    hit = _built.get(id(params))
    if hit is not None and hit[0] is params:
        return hit[1]
    built = tuple(check for build in GUARDS.values() for check in build(params))
    if len(_built) >= _BUILT_MAX:
        _built.clear()
    _built[id(params)] = (params, built)
    return built
