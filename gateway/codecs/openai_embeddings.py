"""OpenAI Embeddings as a client API."""

from __future__ import annotations

import base64
import sys
from array import array

import msgspec

from gateway.codecs.openai_chat import bad_request_from
from gateway.errors import BadRequest
from gateway.ir import EmbeddingResult
from gateway.wire import openai_embeddings as w

_decode = msgspec.json.Decoder(w.EmbeddingsRequest)
_encode = msgspec.json.Encoder()


def decode_request(body: bytes) -> w.EmbeddingsInput:
    """Validate an Embeddings body; a single input becomes a list of one."""
    try:
        req = _decode.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None
    inputs = req.input
    if isinstance(inputs, str):
        items: list = [inputs]  # type: ignore[type-arg]
    elif all(isinstance(i, int) for i in inputs):
        items = [inputs]
    elif all(isinstance(i, str) for i in inputs) or all(isinstance(i, list) for i in inputs):
        items = list(inputs)
    else:
        raise BadRequest("input must be a string, a list of strings, or token arrays", param="input")
    if not items or not items[0]:
        raise BadRequest("input must not be empty", param="input")
    dims = req.dimensions if isinstance(req.dimensions, int) else None
    return w.EmbeddingsInput(req.model, items, req.encoding_format, dims)


def _as_base64(vector: list[float]) -> str:
    # OpenAI's base64 format: little-endian float32s.
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def encode_result(result: EmbeddingResult, model: str, encoding_format: str) -> bytes:
    """An EmbeddingResult as an OpenAI list body, floats or base64 as the caller asked."""
    data = [
        w.Embedding(i, _as_base64(v) if encoding_format == "base64" else v) for i, v in enumerate(result.vectors)
    ]
    tokens = result.usage.input_tokens if result.usage else 0
    return _encode.encode(w.EmbeddingsResponse(data, model, w.EmbeddingsUsage(tokens, tokens)))
