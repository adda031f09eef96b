"""PII detection: e-mail addresses, phone numbers, payment card numbers (Luhn-checked),
US social security numbers, IP addresses (v4 and v6) and IBANs (checksum-checked).

Each entity is a regular expression for candidates and, where the number carries one, a
validation (python-stdnum's Luhn, IBAN and SSN checks), so a long order number is not
taken for a card. A masked entity becomes its type in brackets: ``[EMAIL_ADDRESS]``,
``[PHONE_NUMBER]``, ``[CREDIT_CARD]``, ``[US_SSN]``, ``[IP_ADDRESS]``, ``[IBAN_CODE]``
(Presidio's entity names). Entities are matched in that table's order on text already
masked by the ones before, so an e-mail address holding digits is not also a phone number.
Only whole tokens match: a run of digits inside a longer one, or inside a base64 blob, is
none of these.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from stdnum import iban, luhn
from stdnum.us import ssn

from gateway.config import GuardrailBehavior, GuardrailParameters
from gateway.guards.verdict import Check, CheckContext, Verdict, matched_verdict

Validate = Callable[[str], bool]


def _card(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _ipv6(candidate: str) -> bool:
    # Times (10:30:15) and C++ scopes (std::) are not addresses: ask for a real one with a digit.
    if candidate.count(":") < 2 or not any(c.isdigit() for c in candidate):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
#: (entity, candidate pattern, validation or None), in matching order.
ENTITIES: tuple[tuple[str, re.Pattern[str], Validate | None], ...] = (
    ("EMAIL_ADDRESS",
     re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?!\w)"), None),
    ("IBAN_CODE", re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)"), iban.is_valid),
    ("CREDIT_CARD", re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"), _card),
    ("US_SSN", re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])"), lambda c: ssn.is_valid(c.replace(" ", "-"))),
    ("IP_ADDRESS", re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)"), None),
    ("IP_ADDRESS", re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"), _ipv6),
    ("PHONE_NUMBER", re.compile(
        r"(?<![\w+])(?:"
        r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # North American, with separators
        r"|\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"  # international, with its + prefix
        r")(?![\w])"), lambda c: 10 <= sum(ch.isdigit() for ch in c) <= 15),
)


def find(text: str) -> str:
    """The entity types found in ``text``, comma-separated ('' for none)."""
    found: list[str] = []
    for entity, pattern, validate in ENTITIES:
        if entity in found:
            continue
        for m in pattern.finditer(text):
            if validate is None or validate(m.group()):
                found.append(entity)
                break
    return ",".join(found)


def mask(text: str) -> str:
    """``text`` with every entity replaced by its bracketed type."""
    for entity, pattern, validate in ENTITIES:
        placeholder = f"[{entity}]"
        if validate is None:
            text = pattern.sub(placeholder, text)
        else:
            text = pattern.sub(lambda m, v=validate, p=placeholder: p if v(m.group()) else m.group(), text)
    return text


class PiiCheck:
    name = "pii"

    def __init__(self, behavior: GuardrailBehavior) -> None:
        self.behavior = behavior

    async def __call__(self, texts: Sequence[str], ctx: CheckContext) -> Verdict:
        return matched_verdict(self.behavior, texts, find, mask)

    def mask(self, text: str) -> str:
        return mask(text)


def checks(params: GuardrailParameters) -> list[Check]:
    return [PiiCheck(params.pii.behavior)] if params.pii is not None else []
