from gateway.streaming.sse import SSEDecoder, SSEEvent

STREAM = (
    b": keep-alive\r\n\r\n"
    b"event: message_start\r\ndata: {\"a\": 1}\r\n\r\n"
    b"data: line one\ndata: line two\n\n"
    b"data:no-space\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(b'{"a": 1}', "message_start"),
    SSEEvent(b"line one\nline two"),
    SSEEvent(b"no-space"),
    SSEEvent(b"[DONE]"),
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in [*cuts, len(data)]:
        events += decoder.feed(data[start:cut])
        start = cut
    return events + decoder.finish()


def test_sse_decoder_gives_the_same_events_at_every_split():
    assert decode_in_pieces(STREAM, []) == EXPECTED
    for i in range(len(STREAM) + 1):
        assert decode_in_pieces(STREAM, [i]) == EXPECTED, i


def test_sse_decoder_byte_by_byte():
    assert decode_in_pieces(STREAM, list(range(1, len(STREAM)))) == EXPECTED


def test_sse_decoder_flushes_an_unterminated_last_event():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.finish() == [SSEEvent(b"tail")]


def test_one_event_per_read_gives_what_one_read_of_them_all_gives():
    # Model streams mostly arrive an event per read, which the decoder takes by a short
    # path; near-misses of that shape must come out as the general path makes them.
    reads = [
        b"data: {\"x\": \"a: b\"}\n\n",
        b"event: content_block_delta\ndata: {\"i\": 1}\n\n",
        b"event: ping\n\n",
        b"data: one\ndata: two\n\n",
        b"event: e\ndata: one\ndata: two\n\n",
        b"data: \n\n",
        b"event: e\ndata: x\n\ndata: y\n\n",
        b"data: no blank line yet\n",
        b"\n",
        b"data:tight\n\n",
        b"event: e\r\ndata: crlf\r\n\r\n",
    ]
    one_by_one = SSEDecoder()
    events = [ev for chunk in reads for ev in one_by_one.feed(chunk)] + one_by_one.finish()
    assert events == decode_in_pieces(b"".join(reads), [])
    assert events[:2] == [SSEEvent(b'{"x": "a: b"}'), SSEEvent(b'{"i": 1}', "content_block_delta")]
