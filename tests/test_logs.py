"""The log writer thread: every record written, in order, formatted off the caller's thread."""

from __future__ import annotations

import io
import logging
import threading

from gateway.logs import log_line, setup_logging


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writer_threads: set[str] = set()

    def write(self, text: str) -> int:
        self.writer_threads.add(threading.current_thread().name)
        return super().write(text)


def test_records_reach_the_stream_in_order_from_the_writer_thread() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = Recording()
    try:
        stop = setup_logging(stream)
        log = logging.getLogger("gateway.test")
        for i in range(2000):
            log.info("line %d", i)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed: %s", "here")
        logging.getLogger("gateway.test").debug("below the level")
        stop()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    numbered = [line.rsplit(" ", 1)[1] for line in lines if " INFO gateway.test line " in line]
    assert numbered == [str(i) for i in range(2000)]
    assert any("ERROR gateway.test failed: here" in line for line in lines) and "ValueError: boom" in stream.getvalue()
    assert "below the level" not in stream.getvalue()
    assert stream.writer_threads == {"log-writer"}


def test_the_fast_format_is_the_standard_one() -> None:
    from gateway.logs import _Formatter

    standard = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    fast = _Formatter()
    for created in (1700000000.0, 1700000000.5, 1700000001.25):
        record = logging.LogRecord("gateway.access", logging.INFO, __file__, 1, "request %s", ("r1",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert fast.format(record) == standard.format(record)
        assert fast.line(created, "INFO", "gateway.access", "request r1") == standard.format(record)


def test_lines_queued_without_a_record_keep_their_order_and_the_standard_format() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = Recording()
    access = logging.getLogger("gateway.access")
    try:
        stop = setup_logging(stream)
        for i in range(500):
            log_line(access, f'{{"n": {i}}}')
            logging.getLogger("gateway.test").info("record %d", i)
        stop()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1000
    for i in range(500):
        assert lines[2 * i].endswith(f' INFO gateway.access {{"n": {i}}}')
        assert lines[2 * i + 1].endswith(f" INFO gateway.test record {i}")
    # The same time stamp shape as a record's: "YYYY-mm-dd HH:MM:SS,mmm".
    assert [len(line.split(" INFO ")[0]) for line in lines[:2]] == [23, 23]
    assert stream.writer_threads == {"log-writer"}


def test_log_line_without_the_writer_thread_is_a_plain_record(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        log_line(logging.getLogger("gateway.access"), '{"n": 1}')
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [("gateway.access", "INFO", '{"n": 1}')]
