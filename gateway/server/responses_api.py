"""The OpenAI Responses API (``/openai/v1/responses``, ``/v1/responses``, ``/codex/v1/responses``, ...).

To OpenAI itself the request passes through untouched but for ``model``; to any other
provider it is translated, and the gateway then keeps the conversation (the request's
input items and the response's output items) so that a later ``previous_response_id``
works whatever the provider, for the principal that made the response. ``store: false``
keeps nothing. A ``previous_response_id`` the gateway does not hold for the caller goes on
as it was: OpenAI holds its own responses, and any other provider gets a 400 naming the
unknown id.
"""

from __future__ import annotations

import functools
import uuid

import msgspec
from aiohttp import web

from gateway.codecs import openai_responses as codec
from gateway.guards import reply_texts, request_texts
from gateway.ir import ChatResult
from gateway.pipeline import passthrough
from gateway.pipeline.call import Call
from gateway.pipeline.dispatch import chat_attempt
from gateway.responses_store import ResponseStore
from gateway.server.chat_flow import ChatAPI, find_endpoint, read_body, serve_chat, session_of
from gateway.state import CONTEXT, RESPONSES
from gateway.wire import openai_responses as w


class _Turn:
    """What the Responses API decided about a request before routing."""

    __slots__ = ("echo", "keep", "previous", "own_input", "owner")

    def __init__(self, echo: w.ResponseEcho, keep: bool, previous: str | None, own_input: list[msgspec.Raw],
                 owner: str | None) -> None:
        self.echo = echo
        self.keep = keep
        self.previous = previous  # the stored response this one continues
        self.own_input = own_input  # this request's own input items, what the store keeps of it
        self.owner = owner  # the principal, the only one who may continue it


def _keep(store: ResponseStore, call: Call, output: list[msgspec.Raw]) -> None:
    turn: _Turn = call.turn
    if turn.keep:
        store.put(call.reply_id, [*turn.own_input, *output], previous=turn.previous, owner=turn.owner)


class _StoringEncoder(codec.ResponsesStreamEncoder):
    """The stream encoder that keeps the conversation once the stream has ended."""

    def __init__(self, call: Call, store: ResponseStore) -> None:
        super().__init__(call.reply_id, call.endpoint.name, call.turn.echo)
        self._call = call
        self._store = store

    def finish(self) -> bytes:
        out = super().finish()
        _keep(self._store, self._call, self.result_items)
        return out


class ResponsesAPI(ChatAPI):
    """The Responses ChatAPI, keeping what the gateway produces in ``store``."""

    __slots__ = ("store",)

    def __init__(self, store: ResponseStore) -> None:
        self.store = store
        super().__init__(
            attempt=chat_attempt(passthrough.openai_responses),
            encode_result=self._encode_result,
            stream_encoder=lambda call: _StoringEncoder(call, store),
            raw_error_event=codec.stream_error_event,
            request_texts=request_texts.OPENAI_RESPONSES,
            reply_format=reply_texts.OPENAI_RESPONSES,
        )

    def _encode_result(self, call: Call, result: ChatResult) -> bytes:
        _keep(self.store, call, codec.output_items(result, call.reply_id))
        return codec.encode_result(result, call.endpoint.name, call.reply_id, call.turn.echo)


@functools.lru_cache(maxsize=8)
def _api_for(store: ResponseStore) -> ResponsesAPI:
    """One ResponsesAPI per app (per store), made on first use."""
    return ResponsesAPI(store)


async def create_response(request: web.Request) -> web.StreamResponse:
    return await serve_responses(request, await read_body(request))


async def serve_responses(request: web.Request, body: bytes) -> web.StreamResponse:
    """A Responses body, routed and answered in the same shape."""
    ctx = request[CONTEXT]
    # The one decode of the body: routing, the store, the IR and the reply's echo all read
    # this view, and a bad field is refused here, before a provider is paid.
    view = codec.decode_view(body)
    endpoint = find_endpoint(request, ctx, view.model, "chat")
    api = _api_for(request.app[RESPONSES])
    own_input = codec.own_items(view)
    owner = ctx.principal.name if ctx.principal is not None else None
    previous = conversation = None
    if view.previous_response_id:
        history = api.store.get(view.previous_response_id, owner)
        if history is not None:
            previous = view.previous_response_id
            conversation = [*history, *own_input]
            body = codec.expand_input(body, conversation)  # for OpenAI itself, which takes the bytes
    call = Call(ctx, endpoint, body, stream=bool(view.stream), include_usage=True,
                decode=lambda _body: codec.request_ir(view, conversation),
                session=session_of(request, endpoint), reply_id=f"resp_{uuid.uuid4().hex}")
    keep = view.store is not False  # storing is the default
    call.turn = _Turn(codec.echo_of(view), keep, previous, own_input, owner)
    return await serve_chat(request, api, call)
