"""Which limits apply to one request: a pure function of the rules, the caller and its tags.

Precedence (issue 5): the endpoint limit always applies. Of the caller's own limits, a
rule naming the principal (as a user or as a service principal, by its kind) beats its
groups' rules, which beat the user default. A member of several limited groups is refused
only when every one of those groups is exhausted. Request-tag limits apply on top, one
per tag key the request carries: the rule for its exact value, else the key's any-value
rule (a bucket per value).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import msgspec

from gateway.limits.config import LimitRule

Scope = Literal["endpoint", "user", "service_principal", "group", "default", "request_tag"]
PrincipalKind = Literal["user", "service_principal"]


class Check(msgspec.Struct, frozen=True):
    """One bucket pair (requests, tokens) a request must find budget in.

    ``alternative`` checks (the caller's groups) are enough one at a time: the request
    needs budget in every other check and in at least one alternative.
    """

    scope: Scope
    subject: str  # the principal or group the bucket counts; the endpoint for scope "endpoint"
    qpm: int | None
    tpm: int | None
    bucket: str  # unique among all endpoints, scopes and periods; the limiter adds its prefix
    alternative: bool = False
    period_ms: int = 60_000

    def describe(self) -> str:
        """How a refusal names the target, e.g. ``for user alice@example.com``."""
        if self.scope == "endpoint":
            return ""
        if self.scope == "default":
            return f" for user {self.subject} (per-user default)"
        if self.scope == "request_tag":
            return f" for request tag {self.subject}"
        return f" for {self.scope.replace('_', ' ')} {self.subject}"

    @property
    def period(self) -> str:
        """``minute`` or ``hour``, for messages."""
        return "hour" if self.period_ms == 3_600_000 else "minute"


class LimitChecks(msgspec.Struct, frozen=True):
    """The checks for one request on one endpoint, in the order the limiter tries them."""

    endpoint: str
    items: tuple[Check, ...] = ()


def _check(rule: LimitRule, endpoint: str, scope: Scope, subject: str, *, alternative: bool = False) -> Check:
    # Endpoint names cannot contain ':', and the subject comes last: bucket names never collide.
    # An hourly bucket is a different bucket, so changing a rule's period starts it afresh.
    period = "" if rule.renewal_period == "minute" else "h:"
    bucket = f"{endpoint}:{period}{scope}" if scope == "endpoint" else f"{endpoint}:{period}{scope}:{subject}"
    return Check(scope, subject, rule.qpm, rule.tpm, bucket, alternative, rule.period_ms)


_NO_TAGS: Mapping[str, str] = {}


def resolve_checks(rules: Sequence[LimitRule], endpoint: str, principal: str, groups: Iterable[str], *,
                   kind: PrincipalKind = "user", tags: Mapping[str, str] = _NO_TAGS) -> LimitChecks:
    """The checks that ``principal`` (a ``kind``, member of ``groups``, sending ``tags``) must pass on ``endpoint``.

    Group alternatives keep the rules' order, so the limiter charges the first group that
    has budget.
    """
    member_of = set(groups)
    items: list[Check] = []
    own: Check | None = None
    default: Check | None = None
    group_checks: list[Check] = []
    tag_checks: dict[str, Check] = {}  # tag key -> its check; an exact value beats the any-value rule
    for rule in rules:
        if rule.key == "endpoint":
            items.append(_check(rule, endpoint, "endpoint", endpoint))
        elif rule.key == "request_tag":
            key = rule.tag_key
            assert key is not None  # LimitRule requires it
            value = tags.get(key)
            if value is not None and rule.tag_value in (None, value):
                if rule.tag_value is not None or key not in tag_checks:
                    tag_checks[key] = _check(rule, endpoint, "request_tag", f"{key}={value}")
        elif rule.key == "group":
            if rule.principal in member_of:
                group_checks.append(_check(rule, endpoint, "group", rule.principal, alternative=True))
        elif rule.principal is None:
            default = _check(rule, endpoint, "default", principal)
        elif rule.principal == principal and rule.key == kind:
            own = _check(rule, endpoint, kind, principal)
    if own is not None:
        items.append(own)
    elif group_checks:
        items.extend(group_checks)
    elif default is not None:
        items.append(default)
    items.extend(tag_checks.values())
    return LimitChecks(endpoint, tuple(items))
