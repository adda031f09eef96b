"""The local checks on their own: what PII detection finds and what it leaves alone, how
keywords and patterns match, and the verdicts they give for each behaviour."""

from __future__ import annotations

import pytest

from gateway.config import GuardrailParameters, GuardrailPattern, PiiGuardrail
from gateway.guards import pii
from gateway.guards.keywords import KeywordCheck
from gateway.guards.patterns import PatternCheck
from gateway.guards.registry import GUARDS, checks_for


@pytest.mark.parametrize("text,entity,masked", [
    ("mail jane.doe+news@mail.example.co.uk now", "EMAIL_ADDRESS", "mail [EMAIL_ADDRESS] now"),
    ("call (415) 555-2671.", "PHONE_NUMBER", "call [PHONE_NUMBER]."),
    ("call +1 415.555.2671 or 415-555-2671", "PHONE_NUMBER", "call [PHONE_NUMBER] or [PHONE_NUMBER]"),
    ("London +44 20 7946 0958", "PHONE_NUMBER", "London [PHONE_NUMBER]"),
    ("card 4111 1111 1111 1111 exp 12/29", "CREDIT_CARD", "card [CREDIT_CARD] exp 12/29"),
    ("amex 3782-822463-10005", "CREDIT_CARD", "amex [CREDIT_CARD]"),
    ("ssn 123-45-6789", "US_SSN", "ssn [US_SSN]"),
    ("host 192.168.0.17, gateway fe80::1ff:fe23:4567:890a", "IP_ADDRESS",
     "host [IP_ADDRESS], gateway [IP_ADDRESS]"),
    ("pay to DE89 3704 0044 0532 0130 00 please", "IBAN_CODE", "pay to [IBAN_CODE] please"),
    ("GB82WEST12345698765432", "IBAN_CODE", "[IBAN_CODE]"),
])
def test_pii_finds_and_masks(text, entity, masked):
    assert entity in pii.find(text).split(",")
    assert pii.mask(text) == masked


@pytest.mark.parametrize("text", [
    "order 4111 1111 1111 1112",  # fails the Luhn check
    "invoice 1234567890123456",  # digits, but no card
    "ssn-like 000-12-3456 and 666-12-3456",  # numbers the SSA never issues
    "IBAN DE00 3704 0044 0532 0130 00",  # wrong checksum
    "version v1.2.3.4 and 999.1.1.1",  # not addresses
    "at 10:30:15 use std::vector",  # times and scopes are not IPv6
    "blob aGVsbG8+5551234567/d29ybGQ=",  # digits inside base64
    "the years 2024-2025, page 12",
    "no separators 4155552671",  # a bare ten-digit run is not taken for a phone number
])
def test_pii_leaves_lookalikes_alone(text):
    assert pii.find(text) == ""
    assert pii.mask(text) == text


def test_an_email_with_digits_is_one_email_not_a_phone_number():
    assert pii.mask("write to 415.555.2671@example.com") == "write to [EMAIL_ADDRESS]"


async def test_pii_verdict_follows_the_behaviour():
    texts = ["fine", "mail jane@example.com"]
    verdicts = {}
    for behavior in ("NONE", "BLOCK", "MASK"):
        (check,) = GUARDS["pii"](GuardrailParameters(pii=PiiGuardrail(behavior=behavior)))
        verdicts[behavior] = await check(texts, None)  # type: ignore[arg-type]
    none = verdicts["NONE"]
    assert (none.outcome, none.texts, none.detail) == ("flag", None, "EMAIL_ADDRESS")
    assert (verdicts["BLOCK"].outcome, verdicts["BLOCK"].texts) == ("block", None)
    assert verdicts["MASK"].outcome == "mask" and verdicts["MASK"].texts == ("fine", "mail [EMAIL_ADDRESS]")
    (check,) = GUARDS["pii"](GuardrailParameters(pii=PiiGuardrail(behavior="BLOCK")))
    assert (await check(["nothing here"], None)).outcome == "pass"  # type: ignore[arg-type]


@pytest.mark.parametrize("text,blocked", [
    ("a Secret plan", True), ("TOP SECRET.", True), ("my secretary", False), ("unsecret", False),
    ("project\n  falcon", True), ("projectfalcon", False), ("I write C++ daily", True), ("C+++", True),
])
async def test_keywords_ignore_case_and_respect_words(text, blocked):
    check = KeywordCheck(["secret", "Project Falcon", "c++"])
    assert (await check([text], None)).outcome == ("block" if blocked else "pass")  # type: ignore[arg-type]


async def test_a_pattern_masks_with_its_name_and_blocks_by_default():
    masking = PatternCheck(GuardrailPattern(name="ticket", pattern=r"TCK-\d{4}", behavior="MASK"))
    verdict = await masking(["see TCK-1234 and TCK-9876"], None)  # type: ignore[arg-type]
    assert verdict.texts == ("see [ticket] and [ticket]",)
    blocking = PatternCheck(GuardrailPattern(name="ticket", pattern=r"TCK-\d{4}"))
    assert (await blocking(["TCK-0001"], None)).outcome == "block"  # type: ignore[arg-type]


def test_checks_run_local_first_and_are_built_once():
    params = GuardrailParameters(safety=True, pii=PiiGuardrail(behavior="MASK"), invalid_keywords=["x"],
                                 valid_topics=["billing"], patterns=[GuardrailPattern(name="p", pattern="y")])
    checks = checks_for(params)
    assert [c.name for c in checks] == ["invalid_keywords", "p", "pii", "safety", "valid_topics"]
    assert checks_for(params) is checks
    assert checks_for(GuardrailParameters(invalid_keywords=["x"])) is not checks
