"""Rate-limit configuration: what a rule and a backend accept, with the field's path."""

from __future__ import annotations

import re

import msgspec
import pytest

from gateway.limits import LimiterConfig, LimitRule, check_rules
from tests.limits import rules


@pytest.mark.parametrize("raw,error", [
    ({"key": "user", "principal": "alice"}, "needs qpm, tpm or both - at `$[0]`"),
    ({"key": "endpoint", "principal": "alice", "qpm": 1}, "takes no principal - at `$[0]`"),
    ({"key": "group", "qpm": 1}, "a group limit needs principal: the group's name"),
    ({"key": "service_principal", "tpm": 1}, "a service_principal limit needs principal"),
    ({"key": "user", "qpm": 0}, "Expected `int` >= 1 - at `$[0].qpm`"),
    ({"key": "tag", "qpm": 1}, "Invalid enum value 'tag' - at `$[0].key`"),
    ({"key": "request_tag", "qpm": 1}, "a request_tag limit needs tag_key"),
    ({"key": "request_tag", "tag_key": "team", "principal": "a", "qpm": 1}, "a request tag limit takes no principal"),
    ({"key": "user", "tag_key": "team", "qpm": 1}, "tag_key and tag_value belong to request_tag limits only"),
    ({"key": "user", "qpm": 1, "renewal_period": "day"}, "Invalid enum value 'day' - at `$[0].renewal_period`"),
    ({"key": "user", "qpm": 1, "calls": 2}, "unknown field `calls`"),
])
def test_a_bad_rule_is_refused_with_its_path(raw: dict[str, object], error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(error)):
        rules(raw)


def test_a_rule_may_set_qpm_tpm_or_both() -> None:
    parsed = rules({"key": "endpoint", "qpm": 5}, {"key": "user", "tpm": 10},
                   {"key": "group", "principal": "ml", "qpm": 1, "tpm": 2})
    assert [(r.qpm, r.tpm) for r in parsed] == [(5, None), (None, 10), (1, 2)]


@pytest.mark.parametrize("raw", [
    [{"key": "endpoint", "qpm": 1}, {"key": "endpoint", "tpm": 1}],
    [{"key": "user", "qpm": 1}, {"key": "user", "tpm": 1}],
    [{"key": "group", "principal": "ml", "qpm": 1}, {"key": "group", "principal": "ml", "qpm": 2}],
    [{"key": "user", "qpm": 1}, {"key": "user", "qpm": 1, "renewal_period": "hour"}],
    [{"key": "request_tag", "tag_key": "team", "qpm": 1}, {"key": "request_tag", "tag_key": "team", "tpm": 2}],
])
def test_two_rules_for_one_target_are_refused_naming_the_second(raw: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError, match=r"^\[1\]: a second limit for"):
        check_rules(rules(*raw))


def test_rules_for_different_targets_are_accepted() -> None:
    check_rules(rules(
        {"key": "endpoint", "qpm": 100}, {"key": "user", "qpm": 5}, {"key": "user", "principal": "alice", "qpm": 9},
        {"key": "group", "principal": "alice", "qpm": 3}, {"key": "service_principal", "principal": "bot", "qpm": 1},
        # Users and service principals are separate namespaces.
        {"key": "user", "principal": "bot", "qpm": 2},
        {"key": "request_tag", "tag_key": "team", "qpm": 1},
        {"key": "request_tag", "tag_key": "team", "tag_value": "ads", "qpm": 1},
    ))


def test_the_memory_backend_is_the_default() -> None:
    cfg = msgspec.convert({}, LimiterConfig)
    assert (cfg.backend, cfg.fail_mode, cfg.timeout_ms) == ("memory", "open", 250)


def test_the_redis_backend_needs_a_url() -> None:
    with pytest.raises(msgspec.ValidationError, match="the redis backend needs url"):
        msgspec.convert({"backend": "redis"}, LimiterConfig)
    cfg = msgspec.convert({"backend": "redis", "url": "redis://r:6379", "fail_mode": "closed"}, LimiterConfig)
    assert cfg.fail_mode == "closed"


def test_rules_are_frozen() -> None:
    rule = LimitRule(key="endpoint", qpm=1)
    with pytest.raises(AttributeError):
        rule.qpm = 2  # type: ignore[misc]
