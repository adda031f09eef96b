"""The scenario fake upstreams play for coding agents: call the tool the model name asks for
(``agent-<Tool>``) with the user's last words as its first required string argument, then,
once the tool result comes back, answer ``Tool result: <result>``.

Each wire format reads the request its own way; this module holds the format-free part.
"""

from __future__ import annotations

import json
from typing import Any


def tool_wanted(model: str) -> str | None:
    return model[len("agent-"):] if model.startswith("agent-") else None


def first_string_param(schema: dict[str, Any] | None) -> str:
    schema = schema or {}
    props = schema.get("properties", {})
    for name in schema.get("required", []) + list(props):
        if props.get(name, {}).get("type") == "string":
            return name
    return "input"


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(as_text(v.get("text", v.get("output", ""))) if isinstance(v, dict) else as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


# ---- per format: (tool result if the last turn carries one, else None), the user's words, the tool schema

def openai_chat(body: dict[str, Any], tool: str) -> tuple[str | None, str, dict[str, Any] | None]:
    messages = body.get("messages", [])
    result = as_text(messages[-1].get("content")) if messages and messages[-1].get("role") == "tool" else None
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = user.get("content")
    words = content if isinstance(content, str) else ([p.get("text", "") for p in content or [] if p.get("type") == "text"] or [""])[-1]
    schema = next((t["function"].get("parameters") for t in body.get("tools", []) if t["function"]["name"] == tool), None)
    return result, words.strip(), schema


def anthropic(body: dict[str, Any], tool: str) -> tuple[str | None, str, dict[str, Any] | None]:
    # Claude Code may end with a role:"system" message (a beta); the user's turn is before it.
    last = next(m for m in reversed(body["messages"]) if m["role"] == "user")
    content = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
    results = [as_text(b.get("content")) for b in content if b.get("type") == "tool_result"]
    texts = [b["text"] for b in content if b.get("type") == "text"]
    schema = next((t.get("input_schema") for t in body.get("tools", []) if t.get("name") == tool), None)
    return (results[0] if results else None), (texts[-1].strip() if texts else ""), schema


def gemini(body: dict[str, Any], tool: str) -> tuple[str | None, str, dict[str, Any] | None]:
    parts = body["contents"][-1]["parts"]
    results = [as_text(p["functionResponse"].get("response")) for p in parts if "functionResponse" in p]
    texts = [p["text"] for p in parts if "text" in p]
    schema = None
    for t in body.get("tools", []):
        for d in t.get("functionDeclarations", []):
            if d["name"] == tool:
                schema = d.get("parametersJsonSchema") or d.get("parameters")
    return (results[0] if results else None), (texts[-1].strip() if texts else ""), schema


def responses(body: dict[str, Any], tool: str) -> tuple[str | None, str, dict[str, Any] | None]:
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    last = items[-1]
    result = as_text(last.get("output")) if last.get("type") == "function_call_output" else None
    user = next((i for i in reversed(items) if i.get("role") == "user"), {})
    content = user.get("content", "")
    words = content if isinstance(content, str) else ([p.get("text", "") for p in content if "text" in p] or [""])[-1]
    schema = next((t.get("parameters") for t in body.get("tools", []) if t.get("name") == tool), None)
    return result, words.strip(), schema


def plan(reader, body: dict[str, Any], model: str) -> tuple[str, str | dict[str, Any]]:  # type: ignore[no-untyped-def]
    """("text", reply) or ("call", arguments) for this turn."""
    tool = tool_wanted(model)
    assert tool is not None
    result, words, schema = reader(body, tool)
    if result is not None:
        return "text", f"Tool result: {result}"
    return "call", {first_string_param(schema): words}
