"""Serving-endpoint compatibility: ``POST /serving-endpoints/{endpoint}/invocations``, which
the MLflow deployments client and the Databricks SDK call, and the endpoint listing under
``/api/2.0/serving-endpoints``.

The payload's shape picks the task: ``messages`` is chat, ``prompt`` a completion,
``input`` embeddings. ``client_request_id`` and ``usage_context`` are taken out of the body
(providers would refuse them) and recorded with the request tags. Errors here use the
Databricks shape.
"""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from gateway.codecs import openai_chat, openai_completions
from gateway.guards import request_texts
from gateway.errors import BadRequest, EndpointNotFound
from gateway.pipeline.call import Call
from gateway.pipeline.dispatch import chat_attempt
from gateway.codecs.openai_chat import bad_request_from
from gateway.config import EndpointConfig, GuardrailsConfig
from gateway.server.chat_flow import ChatAPI, find_endpoint, read_body, serve_chat, session_of
from gateway.config import APP_PREFIX
from gateway.server.responses_api import serve_responses
from gateway.server.unified import serve_chat_completions, serve_embeddings
from gateway.server.permissions import require_query, visible
from gateway.state import CONTEXT, ENDPOINTS

_fields = msgspec.json.Decoder(dict[str, msgspec.Raw])
_tags = msgspec.json.Decoder(dict[str, str])
_encode = msgspec.json.Encoder()


async def _no_passthrough(call, provider, target):  # type: ignore[no-untyped-def]
    return None


COMPLETIONS = ChatAPI(
    attempt=chat_attempt(_no_passthrough),
    encode_result=lambda call, result: openai_completions.encode_result(result, call.endpoint.name),
    stream_encoder=lambda call: openai_completions.CompletionStreamEncoder(f"cmpl-{uuid.uuid4().hex}", call.endpoint.name),
    raw_error_event=openai_chat.stream_error_event,
    request_texts=request_texts.COMPLETIONS,
    reply_format=None,  # completions are always translated
)


def _take_tags(fields: dict[str, msgspec.Raw], tags: dict[str, str]) -> None:
    try:
        if "client_request_id" in fields:
            tags["client_request_id"] = msgspec.json.decode(fields.pop("client_request_id"), type=str)
        if "usage_context" in fields:
            tags.update(_tags.decode(fields.pop("usage_context")))
    except msgspec.DecodeError as exc:
        raise BadRequest(f"client_request_id must be a string and usage_context a map of strings: {exc}") from None


async def _payload(request: web.Request, model: str) -> tuple[dict[str, msgspec.Raw], bytes]:
    """The body's fields with the tags taken out and ``model`` set, and the body re-encoded."""
    ctx = request[CONTEXT]
    try:
        fields = _fields.decode(await read_body(request))
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None
    tags = dict(ctx.record.request_tags)
    _take_tags(fields, tags)
    ctx.record.request_tags = tags
    fields["model"] = msgspec.Raw(_encode.encode(model))
    return fields, _encode.encode(fields)


async def invocations(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    name = request.match_info["endpoint"]
    fields, body = await _payload(request, name)
    if "input" in fields and "messages" not in fields:
        return await serve_embeddings(request, body)
    if "messages" in fields:
        return await serve_chat_completions(request, body)
    if "prompt" in fields:
        endpoint = find_endpoint(request, ctx, name, "chat")
        request_ir = openai_completions.decode_request(body)
        call = Call(ctx, endpoint, body, stream=request_ir.stream, include_usage=True, decode=lambda _: request_ir,
                    session=session_of(request, endpoint))
        return await serve_chat(request, COMPLETIONS, call)
    raise BadRequest("The payload needs 'messages' (chat), 'prompt' (completions) or 'input' (embeddings)")


async def app_invocations(request: web.Request) -> web.StreamResponse:
    """``POST /serving-endpoints/apps/{app}/invocations``: an agent app's turn, as the MLflow
    deployments client and the Databricks SDK send it for ``endpoint="apps/<name>"``:
    ``input`` is a Responses request (ResponsesAgent), ``messages`` a Chat Completions one."""
    fields, body = await _payload(request, APP_PREFIX + request.match_info["app"])
    if "input" in fields:
        return await serve_responses(request, body)
    if "messages" in fields:
        return await serve_chat_completions(request, body)
    raise BadRequest("An agent app's payload needs 'input' (Responses) or 'messages' (Chat Completions)")


def describe(endpoint: EndpointConfig) -> dict:  # type: ignore[type-arg]
    return {
        "name": endpoint.name,
        "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
        "task": "llm/v1/embeddings" if endpoint.task == "embeddings" else "llm/v1/chat",
        "config": {
            "served_entities": [
                {"name": e.key, "external_model": {"provider": e.provider, "name": e.model, "task": endpoint.task}}
                for e in endpoint.served_entities
            ],
            "traffic_config": {"routes": [
                {"served_model_name": e.key, "traffic_percentage": e.weight if e.weight is not None else 100}
                for e in endpoint.served_entities
            ]},
            "fallbacks": [{"external_model": {"provider": e.provider, "name": e.model}} for e in endpoint.fallbacks],
        },
        "ai_gateway": {
            "rate_limits": [_rate_limit(r) for r in endpoint.rate_limits],
            "fallback_config": {"enabled": endpoint.fallbacks_enabled and bool(endpoint.fallbacks)},
            "inference_table_config": {"enabled": endpoint.inference_table.enabled},
            **({"guardrails": _guardrails(endpoint.guardrails)} if endpoint.guardrails is not None else {}),
        },
    }


def _guardrails(guardrails: GuardrailsConfig) -> dict[str, object]:
    """Guardrails in the Databricks ``ai_gateway.guardrails`` shape, with only what was set."""
    shaped: dict[str, object] = {}
    for stage in ("input", "output"):
        params = getattr(guardrails, stage)
        if params is not None:
            fields = msgspec.to_builtins(params)
            shaped[stage] = {k: v for k, v in fields.items() if v not in (False, [], None)}
    return shaped


def _rate_limit(rule: LimitRule) -> dict[str, object]:
    """A rule in the Databricks ``ai_gateway.rate_limits`` shape, without unset fields."""
    shaped = {"key": "user_group" if rule.key == "group" else rule.key, "principal": rule.principal,
              "calls": rule.qpm, "tokens": rule.tpm, "renewal_period": rule.renewal_period,
              "request_tag_key": rule.tag_key, "request_tag_value": rule.tag_value}
    return {k: v for k, v in shaped.items() if v is not None}


async def list_endpoints(request: web.Request) -> web.Response:
    ctx = request[CONTEXT]
    endpoints = [describe(e) for _, e in visible(ctx.principal, request.app[ENDPOINTS])]
    return web.json_response({"endpoints": endpoints}, headers={"x-request-id": ctx.request_id})


async def get_endpoint(request: web.Request) -> web.Response:
    ctx = request[CONTEXT]
    endpoint = request.app[ENDPOINTS].get(request.match_info["name"])
    if endpoint is None:
        raise EndpointNotFound(f"Endpoint '{request.match_info['name']}' does not exist")
    require_query(ctx.principal, endpoint)
    return web.json_response(describe(endpoint), headers={"x-request-id": ctx.request_id})
