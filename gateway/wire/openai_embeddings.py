"""OpenAI Embeddings JSON as msgspec Structs."""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from gateway.wire.openai_chat import Usage


class EmbeddingsRequest(msgspec.Struct, omit_defaults=True):
    model: str
    # msgspec allows one array type per union: the shapes (texts, one token array, token
    # arrays) are told apart by the codec.
    input: str | list[str | int | list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | UnsetType = UNSET
    user: str | UnsetType = UNSET


class EmbeddingsInput(msgspec.Struct):
    """A request normalised for providers: always a list of inputs."""

    model: str
    input: list[str] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingsUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: EmbeddingsUsage
    object: str = "list"


class EmbeddingsView(msgspec.Struct):
    """What the gateway reads of an upstream embeddings response."""

    usage: Usage | None = None


class UpstreamEmbedding(msgspec.Struct):
    index: int
    embedding: list[float]


class UpstreamEmbeddings(msgspec.Struct):
    """An embeddings body as the OpenAI provider adapter reads it (floats asked for; usage optional)."""

    data: list[UpstreamEmbedding]
    model: str = ""
    usage: Usage | None = None
