"""Which limits apply to one request: a pure function of the rules and the caller.

Precedence (issue 5): the endpoint limit always applies. Of the caller's own limits, a
rule naming the principal beats its groups' rules, which beat the user default. A member
of several limited groups is refused only when every one of those groups is exhausted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from gateway.limits.config import LimitRule

Scope = Literal["endpoint", "user", "service_principal", "group", "default"]


class Check(msgspec.Struct, frozen=True):
    """One bucket pair (requests, tokens) a request must find budget in.

    ``alternative`` checks (the caller's groups) are enough one at a time: the request
    needs budget in every other check and in at least one alternative.
    """

    scope: Scope
    subject: str  # the principal or group the bucket counts; the endpoint for scope "endpoint"
    qpm: int | None
    tpm: int | None
    bucket: str  # unique among all endpoints and scopes; the limiter adds its prefix
    alternative: bool = False

    def describe(self) -> str:
        """How a refusal names the target, e.g. ``for user alice@example.com``."""
        if self.scope == "endpoint":
            return ""
        if self.scope == "default":
            return f" for user {self.subject} (per-user default)"
        return f" for {self.scope.replace('_', ' ')} {self.subject}"


class LimitChecks(msgspec.Struct, frozen=True):
    """The checks for one request on one endpoint, in the order the limiter tries them."""

    endpoint: str
    items: tuple[Check, ...] = ()


def _check(rule: LimitRule, endpoint: str, scope: Scope, subject: str, *, alternative: bool = False) -> Check:
    # Endpoint names cannot contain ':', and the subject comes last: bucket names never collide.
    bucket = f"{endpoint}:{scope}" if scope == "endpoint" else f"{endpoint}:{scope}:{subject}"
    return Check(scope, subject, rule.qpm, rule.tpm, bucket, alternative)


def resolve_checks(rules: Sequence[LimitRule], endpoint: str, principal: str, groups: Iterable[str]) -> LimitChecks:
    """The checks that ``principal`` (a member of ``groups``) must pass on ``endpoint``.

    Group alternatives keep the rules' order, so the limiter charges the first group that
    has budget.
    """
    member_of = set(groups)
    items: list[Check] = []
    own: Check | None = None
    default: Check | None = None
    group_checks: list[Check] = []
    for rule in rules:
        if rule.key == "endpoint":
            items.append(_check(rule, endpoint, "endpoint", endpoint))
        elif rule.key == "group":
            if rule.principal in member_of:
                group_checks.append(_check(rule, endpoint, "group", rule.principal, alternative=True))
        elif rule.principal is None:
            default = _check(rule, endpoint, "default", principal)
        elif rule.principal == principal:
            own = _check(rule, endpoint, rule.key, principal)
    if own is not None:
        items.append(own)
    elif group_checks:
        items.extend(group_checks)
    elif default is not None:
        items.append(default)
    return LimitChecks(endpoint, tuple(items))
