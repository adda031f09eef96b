"""``invalid_keywords``: refuse text that contains any of the endpoint's keywords.

Matching ignores case and respects words: ``secret`` matches "Secret." and "top SECRET"
but not "secretary"; inside a keyword, any run of whitespace matches any other
(``project  falcon`` matches "Project\\nFalcon"). A keyword that begins or ends with a
character that is not part of a word (``c++``, ``#internal``) matches at that edge
whatever follows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.config import GuardrailParameters
from gateway.guards.verdict import Check, CheckContext, Verdict, matched_verdict


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    """One case-insensitive alternation of ``keywords``, each bounded as a word where it has word edges."""
    alternatives = []
    for word in sorted({k.strip() for k in keywords}, key=len, reverse=True):
        body = r"\s+".join(re.escape(part) for part in word.split())
        head = r"(?<!\w)" if re.match(r"\w", word) else ""
        tail = r"(?!\w)" if re.search(r"\w$", word) else ""
        alternatives.append(head + body + tail)
    return re.compile("|".join(alternatives), re.IGNORECASE)


class KeywordCheck:
    name = "invalid_keywords"

    def __init__(self, keywords: Sequence[str]) -> None:
        self._pattern = keyword_pattern(keywords)

    def _found(self, text: str) -> str:
        return "keyword" if self._pattern.search(text) else ""

    async def __call__(self, texts: Sequence[str], ctx: CheckContext) -> Verdict:
        return matched_verdict("BLOCK", texts, self._found, lambda t: t)


def checks(params: GuardrailParameters) -> list[Check]:
    return [KeywordCheck(params.invalid_keywords)] if params.invalid_keywords else []
