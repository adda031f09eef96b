"""The admin API, in the Databricks serving-endpoints shape.

``POST /api/2.0/serving-endpoints`` creates an endpoint (admins), ``PUT`` / ``DELETE
/api/2.0/serving-endpoints/{name}`` replace or remove one, ``PUT .../{name}/ai-gateway``
sets its rate limits (per minute or hour; endpoint, user default, user, service principal,
group or request tag), its guardrails (``{"input": {...}, "output": {...}}``; ``{}`` removes them),
turns fallbacks off or on and its inference table (payload capture) on or off, and ``GET`` / ``PUT
/api/2.0/permissions/serving-endpoints/{name}`` read and set who may use it. Changing an
endpoint needs CAN_MANAGE on it (or an admin token). Changes go to the store and to this
worker at once; the other workers pick them up at their next reload (``server.store_refresh_s``).
Tokens are managed under ``/api/2.0/token-management/tokens`` by admins.

An endpoint body::

    {"name": "team-chat",
     "config": {"served_entities": [{"name": "a", "external_model": {"provider": "openai", "name": "gpt-4.1"}}],
                "traffic_config": {"routes": [{"served_model_name": "a", "traffic_percentage": 100}]},
                "fallbacks": [{"external_model": {"provider": "anthropic", "name": "claude-sonnet-4-5"}}],
                "task": "llm/v1/chat"}}

``external_model.provider`` names a provider of the gateway's configuration.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from aiohttp import web

from gateway.config import (
    ConfigError, EndpointConfig, GuardrailsConfig, Permission, PrincipalKind, ServedEntity, check_endpoint,
    parse_guardrails,
)
from gateway.codecs.openai_chat import bad_request_from
from gateway.errors import BadRequest, EndpointNotFound, NotFound, PermissionDenied
from gateway.limits import LimitRule
from gateway.server.permissions import may_manage
from gateway.server.chat_flow import read_body
from gateway.server.responding import json_reply
from gateway.server.serving_api import describe
from gateway.state import CONFIG, CONTEXT, ENDPOINTS, ENDPOINTS_TABLE, STORE_REFRESHER, TOKENS_TABLE
from gateway.tokens_table import StoredToken


class ExternalModel(msgspec.Struct):
    provider: str
    name: str


class ServedEntityBody(msgspec.Struct):
    external_model: ExternalModel
    name: str | None = None


class Route(msgspec.Struct):
    served_model_name: str
    traffic_percentage: int


class TrafficConfig(msgspec.Struct):
    routes: list[Route] = []


class EndpointCoreConfig(msgspec.Struct):
    served_entities: list[ServedEntityBody]
    traffic_config: TrafficConfig | None = None
    fallbacks: list[ServedEntityBody] = []
    task: str = "llm/v1/chat"


class EndpointBody(msgspec.Struct):
    config: EndpointCoreConfig
    name: str | None = None


class RateLimitBody(msgspec.Struct):
    """Databricks' rate-limit shape: ``calls`` and/or ``tokens`` per ``renewal_period`` per key."""

    key: str = "endpoint"  # endpoint | user | user_group | service_principal | request_tag
    calls: int | None = None
    tokens: int | None = None
    principal: str | None = None
    renewal_period: str = "minute"  # minute | hour
    request_tag_key: str | None = None
    request_tag_value: str | None = None


class FallbackConfig(msgspec.Struct):
    enabled: bool


class InferenceTableBody(msgspec.Struct, forbid_unknown_fields=True):
    """Databricks' shape. The payloads go to the ``inference`` table of the gateway's own
    store; catalog, schema and prefix are accepted so Databricks clients work unchanged."""

    enabled: bool
    catalog_name: str | None = None
    schema_name: str | None = None
    table_name_prefix: str | None = None


class AIGatewayBody(msgspec.Struct, forbid_unknown_fields=True):
    rate_limits: list[RateLimitBody] | None = None
    fallback_config: FallbackConfig | None = None
    inference_table_config: InferenceTableBody | None = None
    usage_tracking_config: dict[str, object] | None = None
    # Databricks' AiGatewayGuardrails ({"input": {...}, "output": {...}}, plus "patterns");
    # converted into the config's GuardrailsConfig so a bad field is named by its path.
    guardrails: dict[str, object] | None = None


class AccessControl(msgspec.Struct, omit_defaults=True):
    permission_level: str
    user_name: str | None = None
    group_name: str | None = None
    service_principal_name: str | None = None


class PermissionsBody(msgspec.Struct):
    access_control_list: list[AccessControl]


def _decode(body: bytes, kind: type) -> object:  # type: ignore[type-arg]
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None


def _require_manage(request: web.Request, endpoint: EndpointConfig | None, name: str) -> None:
    principal = request[CONTEXT].principal
    if not may_manage(principal, endpoint):
        who = principal.name if principal is not None else "the caller"
        raise PermissionDenied(f"{who} may not manage endpoint '{name}'")


def _existing(request: web.Request, name: str) -> EndpointConfig:
    endpoint = request.app[ENDPOINTS].get(name)
    if endpoint is None:
        raise EndpointNotFound(f"Endpoint '{name}' does not exist")
    _require_manage(request, endpoint, name)
    request[CONTEXT].record.endpoint = name
    return endpoint


def _entity(body: ServedEntityBody, weight: int | None) -> ServedEntity:
    return ServedEntity(provider=body.external_model.provider, model=body.external_model.name, weight=weight)


def _endpoint_from(name: str, body: EndpointBody, base: EndpointConfig | None) -> EndpointConfig:
    core = body.config
    weights = {r.served_model_name: r.traffic_percentage for r in (core.traffic_config.routes if core.traffic_config else [])}
    served = [_entity(e, weights.get(e.name or "") if len(core.served_entities) > 1 else None) for e in core.served_entities]
    fields = msgspec.structs.asdict(base) if base is not None else {}
    fields.update(name=name, served_entities=served, fallbacks=[_entity(f, None) for f in core.fallbacks],
                  task="embeddings" if "embeddings" in core.task else "chat")
    return EndpointConfig(**fields)


async def _save(request: web.Request, endpoint: EndpointConfig) -> web.Response:
    try:
        check_endpoint(endpoint, "", request.app[CONFIG])
    except ConfigError as exc:
        raise BadRequest(str(exc).lstrip(".")) from None
    await request.app[ENDPOINTS_TABLE].put(endpoint)
    request.app[ENDPOINTS].put(endpoint)
    return json_reply(request[CONTEXT], msgspec.json.encode(describe(endpoint)))


async def create_endpoint(request: web.Request) -> web.Response:
    body = _decode(await read_body(request), EndpointBody)
    assert isinstance(body, EndpointBody)
    if not body.name:
        raise BadRequest("name is required", param="name")
    _require_manage(request, None, body.name)
    if body.name in request.app[ENDPOINTS]:
        raise BadRequest(f"Endpoint '{body.name}' already exists", param="name")
    request[CONTEXT].record.endpoint = body.name
    return await _save(request, _endpoint_from(body.name, body, None))


async def update_endpoint(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    base = _existing(request, name)
    body = _decode(await read_body(request), EndpointBody)
    assert isinstance(body, EndpointBody)
    return await _save(request, _endpoint_from(name, body, base))


async def delete_endpoint(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _existing(request, name)
    await request.app[ENDPOINTS_TABLE].delete(name)
    request.app[ENDPOINTS].remove(name)
    return json_reply(request[CONTEXT], b"{}")


_LIMIT_KEYS = {"endpoint": "endpoint", "user": "user", "user_group": "group", "group": "group",
               "service_principal": "service_principal", "request_tag": "request_tag"}


#: LimitRule's field names -> this body's, for error messages.
_BODY_NAMES = {"qpm": "calls", "tpm": "tokens", "tag_key": "request_tag_key", "tag_value": "request_tag_value"}
_RULE_NAME = re.compile(r"\b(" + "|".join(_BODY_NAMES) + r")\b")


def _limit_rule(i: int, r: RateLimitBody) -> LimitRule:
    where = f"rate_limits[{i}]"
    if r.key not in _LIMIT_KEYS:
        raise BadRequest(f"{where}.key: one of {', '.join(sorted(_LIMIT_KEYS))}", param=f"{where}.key")
    try:
        return msgspec.convert({
            "key": _LIMIT_KEYS[r.key], "principal": r.principal, "qpm": r.calls, "tpm": r.tokens,
            "renewal_period": r.renewal_period, "tag_key": r.request_tag_key, "tag_value": r.request_tag_value,
        }, LimitRule)
    except msgspec.ValidationError as exc:
        message = _RULE_NAME.sub(lambda m: _BODY_NAMES[m.group(1)], str(exc)).replace("`$", f"`$.{where}")
        raise BadRequest(f"{where}: {message}", param=where) from None


def _guardrails(request: web.Request, endpoint: EndpointConfig, raw: dict[str, object]) -> GuardrailsConfig | None:
    """The body's guardrails (``{}`` removes them). Custom patterns run on the event loop, so
    only admins may change them."""
    try:
        guardrails = parse_guardrails(raw, "guardrails")
    except ConfigError as exc:
        raise BadRequest(str(exc), param="guardrails") from None

    def patterns(g: GuardrailsConfig | None) -> object:
        return [(s.patterns if s is not None else []) for s in (g.input, g.output)] if g is not None else [[], []]

    principal = request[CONTEXT].principal
    if patterns(guardrails) != patterns(endpoint.guardrails) and not (principal is not None and principal.admin):
        raise PermissionDenied("Only admins may change guardrail patterns")
    return guardrails


async def put_ai_gateway(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    endpoint = _existing(request, name)
    body = _decode(await read_body(request), AIGatewayBody)
    assert isinstance(body, AIGatewayBody)
    # usage_tracking_config is accepted: usage is always tracked.
    changes: dict[str, object] = {}
    if body.guardrails is not None:
        changes["guardrails"] = _guardrails(request, endpoint, body.guardrails)
    if body.rate_limits is not None:
        changes["rate_limits"] = [_limit_rule(i, r) for i, r in enumerate(body.rate_limits)]
    if body.fallback_config is not None:
        changes["fallbacks_enabled"] = body.fallback_config.enabled
    if body.inference_table_config is not None:
        changes["inference_table"] = msgspec.structs.replace(endpoint.inference_table,
                                                             enabled=body.inference_table_config.enabled)
    return await _save(request, msgspec.structs.replace(endpoint, **changes))


def _acl(endpoint: EndpointConfig) -> bytes:
    entries = [AccessControl(p.level, user_name=p.principal, group_name=p.group,
                             service_principal_name=p.service_principal) for p in endpoint.permissions]
    return msgspec.json.encode({"object_id": f"/serving-endpoints/{endpoint.name}", "object_type": "serving-endpoint",
                                "access_control_list": entries})


async def get_permissions(request: web.Request) -> web.Response:
    endpoint = _existing(request, request.match_info["name"])
    return json_reply(request[CONTEXT], _acl(endpoint))


async def put_permissions(request: web.Request) -> web.Response:
    endpoint = _existing(request, request.match_info["name"])
    body = _decode(await read_body(request), PermissionsBody)
    assert isinstance(body, PermissionsBody)
    grants = []
    for i, entry in enumerate(body.access_control_list):
        if entry.permission_level not in ("CAN_QUERY", "CAN_MANAGE"):
            raise BadRequest(f"access_control_list[{i}].permission_level: CAN_QUERY or CAN_MANAGE")
        names = (entry.user_name, entry.service_principal_name, entry.group_name)
        if sum(n is not None for n in names) != 1:
            raise BadRequest(f"access_control_list[{i}]: name one user_name, service_principal_name or group_name")
        grants.append(Permission(principal=entry.user_name, service_principal=entry.service_principal_name,
                                 group=entry.group_name, level=entry.permission_level))  # type: ignore[arg-type]
    updated = msgspec.structs.replace(endpoint, permissions=grants)
    await _save(request, updated)
    return json_reply(request[CONTEXT], _acl(updated))


# ---- tokens (Databricks token-management shape; admins only) ------------------------------

class CreateTokenBody(msgspec.Struct):
    principal: str
    kind: PrincipalKind = "user"
    groups: list[str] = []
    admin: bool = False
    lifetime_seconds: Annotated[int, msgspec.Meta(ge=1)] | None = None  # None: never expires
    comment: str = ""


def _require_admin(request: web.Request) -> None:
    principal = request[CONTEXT].principal
    if principal is None or not principal.admin:
        raise PermissionDenied("Managing tokens needs an admin token")


def _token_info(t: StoredToken) -> dict[str, object]:
    return {"token_id": t.id, "owner": t.principal, "kind": t.kind, "groups": list(t.groups), "admin": t.admin,
            "creation_time": int(t.created_at * 1000), "expiry_time": int(t.expires_at * 1000) if t.expires_at else -1,
            "revoked": t.revoked_at is not None, "comment": t.description}


async def create_token(request: web.Request) -> web.Response:
    """A new token; its value is in the response once and never again."""
    _require_admin(request)
    body = _decode(await read_body(request), CreateTokenBody)
    assert isinstance(body, CreateTokenBody)
    secret, row = await request.app[TOKENS_TABLE].create(
        body.principal, tuple(body.groups), kind=body.kind, admin=body.admin, expires_in=body.lifetime_seconds,
        description=body.comment)
    await request.app[STORE_REFRESHER].load()
    return json_reply(request[CONTEXT], msgspec.json.encode({"token_value": secret, "token_info": _token_info(row)}))


async def list_tokens(request: web.Request) -> web.Response:
    _require_admin(request)
    rows = await request.app[TOKENS_TABLE].list()
    return json_reply(request[CONTEXT], msgspec.json.encode({"token_infos": [_token_info(t) for t in rows]}))


async def revoke_token(request: web.Request) -> web.Response:
    _require_admin(request)
    if not await request.app[TOKENS_TABLE].revoke(request.match_info["token_id"]):
        raise NotFound(f"No unrevoked token with id {request.match_info['token_id']}")
    await request.app[STORE_REFRESHER].load()
    return json_reply(request[CONTEXT], b"{}")
