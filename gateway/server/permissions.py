"""Who may query which endpoint.

An endpoint without ``permissions`` is open to every authenticated caller (the simple
setups and the embedded default). With a list, only the principals and groups it names may
call it, at CAN_QUERY or CAN_MANAGE (which includes querying); an admin token may do
everything. Listings show each caller only what it may query.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.config import EndpointConfig, Permission
from gateway.errors import PermissionDenied
from gateway.server.auth import Principal


def grants(permission: Permission, principal: Principal) -> bool:
    """Whether ``permission`` names ``principal``: as a user, a service principal or through a group."""
    if permission.group is not None:
        return permission.group in principal.groups
    if principal.kind == "service_principal":
        return permission.service_principal == principal.name
    return permission.principal == principal.name


def may_query(principal: Principal | None, endpoint: EndpointConfig) -> bool:
    """CAN_QUERY or CAN_MANAGE on ``endpoint``, an admin, or an endpoint open to every caller."""
    if not endpoint.permissions or (principal is not None and principal.admin):
        return True
    if principal is None:
        return False
    return any(grants(p, principal) for p in endpoint.permissions)


def may_manage(principal: Principal | None, endpoint: EndpointConfig | None) -> bool:
    """CAN_MANAGE on ``endpoint``, or an admin (the only one who may create endpoints: ``endpoint`` None)."""
    if principal is None:
        return False
    if principal.admin:
        return True
    if endpoint is None:
        return False
    return any(p.level == "CAN_MANAGE" and grants(p, principal) for p in endpoint.permissions)


def require_query(principal: Principal | None, endpoint: EndpointConfig) -> None:
    """Raise 403 (in the caller's API shape) unless ``principal`` may query ``endpoint``."""
    if not may_query(principal, endpoint):
        who = principal.name if principal is not None else "the caller"
        raise PermissionDenied(f"{who} may not query endpoint '{endpoint.name}'")


def visible(principal: Principal | None, endpoints: dict[str, EndpointConfig]) -> Iterator[tuple[str, EndpointConfig]]:
    """The endpoints ``principal`` may query, in configuration order."""
    return ((name, ep) for name, ep in endpoints.items() if may_query(principal, ep))
