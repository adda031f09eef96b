"""Which limits apply to a request: issue 5's precedence, as a pure function."""

from __future__ import annotations

import pytest

from gateway.limits import LimitRule, resolve_checks
from gateway.limits.rules import PrincipalKind
from tests.limits import rules

RULES = rules(
    {"key": "endpoint", "qpm": 100},
    {"key": "user", "qpm": 5},  # the user default
    {"key": "user", "principal": "alice", "qpm": 20},
    {"key": "service_principal", "principal": "ci-bot", "tpm": 1000},
    {"key": "group", "principal": "ml", "qpm": 10},
    {"key": "group", "principal": "eng", "qpm": 30},
)


def applied(principal: str, groups: tuple[str, ...] = (), rule_list: list[LimitRule] = RULES, *,
            kind: PrincipalKind = "user", tags: dict[str, str] | None = None) -> list[tuple[str, str, bool]]:
    checks = resolve_checks(rule_list, "chat", principal, groups, kind=kind, tags=tags or {})
    assert checks.endpoint == "chat"
    return [(c.scope, c.subject, c.alternative) for c in checks.items]


ENDPOINT = ("endpoint", "chat", False)


@pytest.mark.parametrize("principal,groups,expected", [
    # A principal's own rule beats its groups and the default.
    ("alice", ("ml", "eng"), [ENDPOINT, ("user", "alice", False)]),
    # Groups beat the default; each limited group is an alternative, in the rules' order.
    ("bob", ("eng", "ml"), [ENDPOINT, ("group", "ml", True), ("group", "eng", True)]),
    ("carol", ("eng", "sales"), [ENDPOINT, ("group", "eng", True)]),
    # Without a rule of its own or a limited group: the user default, counted per principal.
    ("dave", ("sales",), [ENDPOINT, ("default", "dave", False)]),
    ("erin", (), [ENDPOINT, ("default", "erin", False)]),
])
def test_precedence(principal: str, groups: tuple[str, ...], expected: list[tuple[str, str, bool]]) -> None:
    assert applied(principal, groups) == expected


def test_a_service_principal_rule_applies_only_to_the_service_principal_of_that_name() -> None:
    assert applied("ci-bot", ("ml",), kind="service_principal") == [ENDPOINT, ("service_principal", "ci-bot", False)]
    # A user who happens to share the name falls through to its groups.
    assert applied("ci-bot", ("ml",)) == [ENDPOINT, ("group", "ml", True)]
    assert applied("alice", kind="service_principal") == [ENDPOINT, ("default", "alice", False)]


TAGGED = rules(
    {"key": "endpoint", "qpm": 100},
    {"key": "request_tag", "tag_key": "team", "tag_value": "search", "qpm": 50},
    {"key": "request_tag", "tag_key": "team", "qpm": 10},
    {"key": "request_tag", "tag_key": "app", "qpm": 10},
)


@pytest.mark.parametrize("tags,expected", [
    ({}, [ENDPOINT]),
    ({"other": "x"}, [ENDPOINT]),
    ({"team": "ads"}, [ENDPOINT, ("request_tag", "team=ads", False)]),
    # The rule for the exact value wins whatever the rules' order.
    ({"team": "search"}, [ENDPOINT, ("request_tag", "team=search", False)]),
    ({"team": "ads", "app": "bot"}, [ENDPOINT, ("request_tag", "team=ads", False), ("request_tag", "app=bot", False)]),
])
def test_tag_limits(tags: dict[str, str], expected: list[tuple[str, str, bool]]) -> None:
    assert applied("alice", (), TAGGED, tags=tags) == expected


def test_the_exact_tag_rule_carries_its_own_limit_and_bucket() -> None:
    search, ads = (resolve_checks(TAGGED, "chat", "a", (), tags={"team": v}).items[1] for v in ("search", "ads"))
    assert (search.qpm, search.bucket) == (50, "chat:request_tag:team=search")
    assert (ads.qpm, ads.bucket) == (10, "chat:request_tag:team=ads")


def test_an_hourly_rule_has_its_own_bucket_and_period() -> None:
    (hourly,) = resolve_checks(rules({"key": "endpoint", "qpm": 1, "renewal_period": "hour"}), "chat", "a", ()).items
    assert (hourly.bucket, hourly.period_ms, hourly.period) == ("chat:h:endpoint", 3_600_000, "hour")


def test_without_a_default_an_unnamed_principal_meets_only_the_endpoint_limit() -> None:
    assert applied("erin", (), rules({"key": "endpoint", "qpm": 1}, {"key": "group", "principal": "ml", "qpm": 1})) == [
        ENDPOINT,
    ]


def test_no_rules_give_no_checks() -> None:
    assert resolve_checks([], "chat", "alice", ("ml",)).items == ()


def test_buckets_are_per_endpoint_and_per_subject() -> None:
    on_chat = resolve_checks(RULES, "chat", "dave", ()).items
    on_code = resolve_checks(RULES, "code", "dave", ()).items
    erin = resolve_checks(RULES, "chat", "erin", ()).items
    assert [c.bucket for c in on_chat] == ["chat:endpoint", "chat:default:dave"]
    assert [c.bucket for c in on_code] == ["code:endpoint", "code:default:dave"]
    assert erin[1].bucket == "chat:default:erin"


def test_a_group_bucket_is_shared_by_its_members() -> None:
    bob = resolve_checks(RULES, "chat", "bob", ("ml",)).items[1]
    frank = resolve_checks(RULES, "chat", "frank", ("ml",)).items[1]
    assert bob.bucket == frank.bucket == "chat:group:ml"


def test_a_check_carries_its_rules_limits() -> None:
    bot = resolve_checks(RULES, "chat", "ci-bot", (), kind="service_principal").items[1]
    assert (bot.qpm, bot.tpm) == (None, 1000)
