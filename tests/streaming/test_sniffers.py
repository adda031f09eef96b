"""The relay's usage sniffers read only what the usage record needs: Anthropic and Gemini
text events are measured without the provider decoder, Responses deltas without the whole
event, and a Chat Completions chunk goes out as it came unless it must lose the gateway's
own usage event. The record must come out as if every event were decoded, and the caller
must get every event, however the stream is split."""

from __future__ import annotations

import json

import pytest

from gateway.errors import UpstreamInvalidResponse, UpstreamStatus, UpstreamUnavailable
from gateway.ir import Usage
from gateway.providers.anthropic import AnthropicStreamDecoder
from gateway.providers.gemini import GeminiStreamDecoder
from gateway.streaming.passthrough import ChatStreamSniffer
from gateway.streaming.responses_sniff import ResponsesStreamSniffer
from gateway.streaming.sniff import EventSniffer, anthropic_block_chars, gemini_text_chars
from gateway.streaming.sse import SSEDecoder
from tests.streaming.test_sse_decoder import spec_events


def sse(obj: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(obj).encode() + b"\n\n"


def anthropic(obj: dict) -> bytes:  # type: ignore[type-arg]
    return sse(obj, obj["type"])


def block_delta(index: int, **delta: str) -> bytes:
    return anthropic({"type": "content_block_delta", "index": index, "delta": delta})


ANTHROPIC_HEAD = anthropic({"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [],
    "stop_reason": None, "usage": {"input_tokens": 11, "output_tokens": 1}}})
ANTHROPIC_BODY = b"".join([
    anthropic({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    block_delta(0, type="thinking_delta", thinking="Let me think."),
    block_delta(0, type="signature_delta", signature="c2lnbmF0dXJl"),
    anthropic({"type": "content_block_stop", "index": 0}),
    anthropic({"type": "ping"}),
    anthropic({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "Héllo"}}),
    block_delta(1, type="text_delta", text=" wörld \"quoted\"\n"),
    anthropic({"type": "content_block_stop", "index": 1}),
    anthropic({"type": "content_block_start", "index": 2,
               "content_block": {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {}}}),
    block_delta(2, type="input_json_delta", partial_json='{"path": '),
    block_delta(2, type="input_json_delta", partial_json='"a.txt"}'),
    anthropic({"type": "content_block_stop", "index": 2}),
])
ANTHROPIC_TAIL = (anthropic({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 42}})
                  + anthropic({"type": "message_stop"}))
ANTHROPIC_CHARS = len("Let me think.") + len("Héllo") + len(' wörld "quoted"\n') + len('{"path": "a.txt"}')


def relay(sniffer, stream: bytes, cut: int):  # type: ignore[no-untyped-def]
    out = sniffer.relay(stream[:cut]) + sniffer.relay(stream[cut:]) + sniffer.finish()
    assert out == stream  # relayed untouched
    return sniffer


def measured() -> EventSniffer:
    return EventSniffer(AnthropicStreamDecoder("a"), anthropic_block_chars)


def test_anthropic_text_is_measured_and_usage_decoded_at_every_split() -> None:
    stream = ANTHROPIC_HEAD + ANTHROPIC_BODY + ANTHROPIC_TAIL
    for cut in range(len(stream) + 1):
        sniffer = relay(measured(), stream, cut)
        assert (sniffer.usage, sniffer.chars, sniffer.error) == (Usage(11, 42), ANTHROPIC_CHARS, None), cut


def test_anthropic_measure_agrees_with_the_full_decoder() -> None:
    stream = ANTHROPIC_HEAD + ANTHROPIC_BODY + ANTHROPIC_TAIL
    full = relay(EventSniffer(AnthropicStreamDecoder("a")), stream, 0)
    fast = relay(measured(), stream, 0)
    assert (fast.usage, fast.chars) == (full.usage, full.chars)


def test_anthropic_text_of_a_cut_stream_still_counts() -> None:
    stream = ANTHROPIC_HEAD + ANTHROPIC_BODY  # no message_delta, no message_stop
    sniffer = relay(measured(), stream, len(stream) // 2)
    assert sniffer.usage is None and sniffer.chars == ANTHROPIC_CHARS
    assert isinstance(sniffer.error, UpstreamUnavailable) and "before message_stop" in sniffer.error.message


def test_anthropic_error_event_is_noted() -> None:
    error = anthropic({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    stream = ANTHROPIC_HEAD + block_delta(0, type="text_delta", text="partial") + error
    for cut in range(len(stream) + 1):
        sniffer = relay(measured(), stream, cut)
        assert isinstance(sniffer.error, UpstreamStatus) and sniffer.error.http_status == 529, cut
        assert sniffer.chars == len("partial")


def test_an_anthropic_block_event_that_does_not_parse_goes_to_the_decoder() -> None:
    stream = ANTHROPIC_HEAD + b"event: content_block_delta\ndata: {not json\n\n" + ANTHROPIC_TAIL
    sniffer = relay(measured(), stream, 0)
    assert isinstance(sniffer.error, UpstreamInvalidResponse)


def test_unnamed_anthropic_events_are_decoded_whole() -> None:
    stream = (ANTHROPIC_HEAD + ANTHROPIC_BODY + ANTHROPIC_TAIL).replace(b"event: ", b": was event ")
    sniffer = relay(measured(), stream, 0)
    # the decoder counts a tool called without arguments as "{}"; here every tool has arguments
    assert (sniffer.usage, sniffer.chars, sniffer.error) == (Usage(11, 42), ANTHROPIC_CHARS, None)


def responses_stream(named: bool) -> bytes:
    def ev(obj: dict) -> bytes:  # type: ignore[type-arg]
        return sse(obj, obj["type"] if named else None)

    response = {"id": "resp_1", "status": "in_progress", "output": [], "usage": None}
    usage = {"input_tokens": 5, "output_tokens": 9, "input_tokens_details": {"cached_tokens": 2},
             "output_tokens_details": {"reasoning_tokens": 3}}
    return b"".join([
        ev({"type": "response.created", "response": response}),
        ev({"type": "response.reasoning_summary_text.delta", "delta": "hmm"}),
        ev({"type": "response.output_text.delta", "delta": "Hi "}),
        ev({"type": "response.output_text.delta", "delta": "thére"}),
        ev({"type": "response.function_call_arguments.delta", "delta": '{"a": 1}'}),  # arguments: not text
        ev({"type": "response.output_text.done", "text": "Hi thére"}),  # repeats the text: not counted again
        ev({"type": "response.output_item.done", "item": {"content": [{"text": "Hi thére"}]}}),
        ev({"type": "response.completed", "response": {**response, "status": "completed", "usage": usage}}),
    ])


@pytest.mark.parametrize("named", [True, False])
def test_responses_usage_and_text_at_every_split(named: bool) -> None:
    stream = responses_stream(named)
    for cut in range(len(stream) + 1):
        sniffer = relay(ResponsesStreamSniffer(), stream, cut)
        assert sniffer.usage == Usage(5, 9, cache_read_tokens=2, reasoning_tokens=3), cut
        assert sniffer.chars == len("hmm") + len("Hi thére"), cut


def gemini_usage(out: int) -> dict:  # type: ignore[type-arg]
    return {"promptTokenCount": 7, "candidatesTokenCount": out, "totalTokenCount": 7 + out}


def gemini_chunk(*parts: dict, finish: str | None = None, out: int = 1) -> bytes:  # type: ignore[type-arg]
    candidate: dict = {"content": {"role": "model", "parts": list(parts)}, "index": 0}  # type: ignore[type-arg]
    if finish:
        candidate["finishReason"] = finish
    return sse({"candidates": [candidate], "usageMetadata": gemini_usage(out), "modelVersion": "gemini-x"})


GEMINI_STREAM = b"".join([
    gemini_chunk({"text": "Pondering", "thought": True}, out=1),
    gemini_chunk({"text": "", "thought": True, "thoughtSignature": "c2ln"}, out=1),
    gemini_chunk({"text": "Héllo \"there\""}, out=2),
    gemini_chunk({"executableCode": {"language": "PYTHON", "code": "print(1)"}}, out=3),  # no place in the IR
    gemini_chunk({"functionCall": {"name": "read", "args": {"path": "a.txt"}}}, out=4),
    gemini_chunk({"text": ""}, finish="STOP", out=5),
])
GEMINI_CHARS = len("Pondering") + len('Héllo "there"') + len('{"path": "a.txt"}')  # arguments as sent


def test_gemini_text_is_measured_and_the_finish_chunk_decoded_at_every_split() -> None:
    full = relay(EventSniffer(GeminiStreamDecoder("g")), GEMINI_STREAM, 0)
    assert (full.usage, full.chars, full.error) == (Usage(7, 5), GEMINI_CHARS, None)
    for cut in range(len(GEMINI_STREAM) + 1):
        sniffer = relay(EventSniffer(GeminiStreamDecoder("g"), gemini_text_chars), GEMINI_STREAM, cut)
        assert (sniffer.usage, sniffer.chars, sniffer.error) == (full.usage, full.chars, None), cut


def test_gemini_usage_in_a_chunk_after_the_finish_is_kept() -> None:
    stream = GEMINI_STREAM + sse({"usageMetadata": gemini_usage(9)})
    sniffer = relay(EventSniffer(GeminiStreamDecoder("g"), gemini_text_chars), stream, 0)
    assert sniffer.usage == Usage(7, 9)


def test_gemini_error_mid_stream_is_noted() -> None:
    stream = gemini_chunk({"text": "partial"}) + sse({"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}})
    sniffer = relay(EventSniffer(GeminiStreamDecoder("g"), gemini_text_chars), stream, 0)
    assert isinstance(sniffer.error, UpstreamStatus) and sniffer.error.http_status == 503
    assert sniffer.chars == len("partial") and sniffer.usage is None


def test_gemini_cut_stream_counts_its_text() -> None:
    stream = GEMINI_STREAM.rsplit(b"data: ", 1)[0]  # no finish chunk
    sniffer = relay(EventSniffer(GeminiStreamDecoder("g"), gemini_text_chars), stream, 0)
    assert sniffer.usage is None and sniffer.chars == GEMINI_CHARS
    assert isinstance(sniffer.error, UpstreamUnavailable)


def events_of(stream: bytes):  # type: ignore[no-untyped-def]
    decoder = SSEDecoder()
    return decoder.feed(stream) + decoder.finish()


def test_which_events_skip_the_decoder() -> None:
    anthropic_measured = [anthropic_block_chars(ev) for ev in events_of(ANTHROPIC_HEAD + ANTHROPIC_BODY + ANTHROPIC_TAIL)]
    assert anthropic_measured[0] is None and anthropic_measured[-2:] == [None, None]  # start; message_delta, stop
    assert None not in anthropic_measured[1:-2]  # every content-block event and the ping
    gemini_measured = [gemini_text_chars(ev) for ev in events_of(GEMINI_STREAM)]
    assert gemini_measured == [len("Pondering"), 0, len('Héllo "there"'), None, None, None]


CHAT_EVENTS = [
    b'{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
    b'{"id":"a","choices":[{"index":0,"delta":{"content":"Hi "}}]}',
    b'{"id":"a","choices":[{"index":0,"delta":{"content":"there"}}]}',
    b'{"id":"a","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}',
    b"[DONE]",
]


def chat_stream(framing: str) -> bytes:
    if framing == "plain":
        return b"".join(b"data: " + e + b"\n\n" for e in CHAT_EVENTS)
    # CRLF, a keep-alive comment, and an event split over two data lines
    first, *rest = CHAT_EVENTS
    return (b": keep-alive\r\n\r\n" + b"data: " + first[:20] + b"\r\ndata: " + first[20:] + b"\r\n\r\n"
            + b"".join(b"data: " + e + b"\r\n\r\n" for e in rest))


@pytest.mark.parametrize("framing", ["plain", "crlf, comments, split data"])
def test_the_gateways_usage_event_is_dropped_and_the_rest_intact_at_every_split(framing: str) -> None:
    stream = chat_stream(framing)
    expected = [e.data for e in spec_events(stream) if b'"usage"' not in e.data]
    for a in range(len(stream) + 1):
        for b in range(a, len(stream) + 1, 7):
            sniffer = ChatStreamSniffer(drop_usage_chunk=True)
            out = sniffer.relay(stream[:a]) + sniffer.relay(stream[a:b]) + sniffer.relay(stream[b:]) + sniffer.finish()
            data = [e.data for e in spec_events(out)]
            data = [d.replace(b"\n", b"") for d in data]  # an event split over data lines joins with "\n"
            assert data == [d.replace(b"\n", b"") for d in expected], (a, b)
            assert sniffer.usage == Usage(4, 2) and sniffer.chars == len("Hi there"), (a, b)


def test_whole_chunks_without_the_usage_event_go_out_as_they_came() -> None:
    sniffer = ChatStreamSniffer(drop_usage_chunk=True)
    chunk = b": keep-alive\r\n\r\ndata: " + CHAT_EVENTS[1] + b"\r\n\r\n"
    assert sniffer.relay(chunk) is chunk
