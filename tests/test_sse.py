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
