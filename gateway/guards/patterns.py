"""``patterns``: the endpoint's own regular expressions, each a check of its own name.

A pattern blocks (``BLOCK``, the default), rewrites each match to ``[<name>]`` (``MASK``)
or only counts (``NONE``). Patterns run on the event loop with Python's ``re``: one with
nested repetition (``(a+)+``) can take very long on a crafted text, so the admin API lets
only admins change them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.config import GuardrailParameters, GuardrailPattern
from gateway.guards.verdict import Check, CheckContext, Verdict, matched_verdict


class PatternCheck:
    def __init__(self, pattern: GuardrailPattern) -> None:
        self.name = pattern.name
        self.behavior = pattern.behavior
        self._regex = re.compile(pattern.pattern)
        self._placeholder = f"[{pattern.name}]"

    def _found(self, text: str) -> str:
        return "match" if self._regex.search(text) else ""

    def mask(self, text: str) -> str:
        return self._regex.sub(self._placeholder, text)

    async def __call__(self, texts: Sequence[str], ctx: CheckContext) -> Verdict:
        return matched_verdict(self.behavior, texts, self._found, self.mask)


def checks(params: GuardrailParameters) -> list[Check]:
    return [PatternCheck(p) for p in params.patterns]
