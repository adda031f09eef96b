"""Who may query which endpoint.

An endpoint without ``permissions`` is open to every authenticated caller (the simple
setups and the embedded default). With a list, only the principals and groups it names may
call it, at CAN_QUERY or CAN_MANAGE (which includes querying); an admin token may do
everything. Listings show each caller only what it may query.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.config import EndpointConfig
from gateway.errors import PermissionDenied
from gateway.server.auth import Principal


def may_query(principal: Principal | None, endpoint: EndpointConfig) -> bool:
    if not endpoint.permissions or (principal is not None and principal.admin):
        return True
    if principal is None:
        return False
    groups = set(principal.groups)
    return any(
        (p.principal == principal.name) or (p.group is not None and p.group in groups) for p in endpoint.permissions
    )


def require_query(principal: Principal | None, endpoint: EndpointConfig) -> None:
    """Raise 403 (in the caller's API shape) unless ``principal`` may query ``endpoint``."""
    if not may_query(principal, endpoint):
        who = principal.name if principal is not None else "the caller"
        raise PermissionDenied(f"{who} may not query endpoint '{endpoint.name}'")


def visible(principal: Principal | None, endpoints: dict[str, EndpointConfig]) -> Iterator[tuple[str, EndpointConfig]]:
    """The endpoints ``principal`` may query, in configuration order."""
    return ((name, ep) for name, ep in endpoints.items() if may_query(principal, ep))
