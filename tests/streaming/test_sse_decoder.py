"""SSEDecoder against a plain reading of the SSE spec, over streams split at every offset:
the decoder keeps only unread bytes between reads, so any split must give the same events."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway.streaming.sse import SSEDecoder, SSEEvent


def spec_events(stream: bytes) -> list[SSEEvent]:
    """The events of a whole stream, line by line as the spec reads it (an unterminated
    last event is kept, as the decoder's finish() does)."""
    events: list[SSEEvent] = []
    data: list[bytes] = []
    event: str | None = None
    for line in [*stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"), b""]:
        if not line:
            if data:
                events.append(SSEEvent(b"\n".join(data), event))
            data, event = [], None
        elif not line.startswith(b":"):
            field, sep, value = line.partition(b":")
            value = value[1:] if sep and value.startswith(b" ") else value
            if field == b"data":
                data.append(value)
            elif field == b"event":
                event = value.decode()
    return events


def decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.finish()


def split_at(stream: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


STREAMS = {
    "openai": b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    "named": b"event: message_start\ndata: {}\n\nevent: ping\ndata: {}\n\nevent: x\ndata: y\n\n",
    "crlf": b"event: e\r\ndata: one\r\n\r\ndata: two\r\n\r\n",
    "bare cr": b"data: one\r\rdata:two\r\r",
    "fields without a space and comments": b": keep-alive\n\nevent:e\ndata:a\n: note\ndata: b\nid: 7\nretry: 10\n\n",
    "extra blank lines": b"\n\n\ndata: a\n\n\n\n\ndata: b\n\n",
    "empty data and a reset name": b"event: e\ndata:\n\ndata: after\n\n",
    "data with colons and spaces": b"data:  two spaces\ndata: a: b\n\n",
    "an event name left without data": b"event: lonely\n\ndata: plain\n\n",
    "unterminated last event": b"data: a\n\ndata: tail",
    "last line ended, no blank line": b"data: a\n\nevent: e\ndata: tail\n",
    "utf-8": "data: héllo ✓\n\n".encode(),
}


@pytest.mark.parametrize("name", STREAMS)
def test_every_split_in_two_gives_the_spec_events(name: str) -> None:
    stream = STREAMS[name]
    expected = spec_events(stream)
    for cut in range(len(stream) + 1):
        assert decode(split_at(stream, (cut,))) == expected, cut


@pytest.mark.parametrize("name", STREAMS)
def test_every_split_in_three_gives_the_spec_events(name: str) -> None:
    stream = STREAMS[name]
    expected = spec_events(stream)
    for cuts in itertools.combinations(range(len(stream) + 1), 2):
        assert decode(split_at(stream, cuts)) == expected, cuts


@pytest.mark.parametrize("name", STREAMS)
def test_byte_by_byte_gives_the_spec_events(name: str) -> None:
    stream = STREAMS[name]
    assert decode([stream[i:i + 1] for i in range(len(stream))]) == spec_events(stream)


def test_random_reads_of_a_long_mixed_stream() -> None:
    stream = b"".join(STREAMS.values()).replace(b"data: tail", b"data: tail\n\n")
    expected = spec_events(stream)
    rng = random.Random(7)
    for _ in range(200):
        cuts = tuple(sorted(rng.sample(range(len(stream) + 1), rng.randint(1, 40))))
        assert decode(split_at(stream, cuts)) == expected, cuts


def test_an_event_in_many_reads_is_held_as_pieces_until_its_blank_line() -> None:
    decoder = SSEDecoder()
    payload = b"x" * 4096
    assert decoder.feed(b"data: ") == []
    for _ in range(256):
        assert decoder.feed(payload) == []
    assert len(decoder._pending) == 257  # noqa: SLF001 - unread pieces, not one buffer re-copied per read
    (event,) = decoder.feed(b"\n\n")
    assert event == SSEEvent(payload * 256) and decoder._pending == []  # noqa: SLF001


def test_a_cr_ending_a_read_ends_its_line_at_once() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [SSEEvent(b"a")]  # no wait for the next read
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(b"b")]  # that LF was the rest of the CRLF
