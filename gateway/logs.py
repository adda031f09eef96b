"""Log output that never blocks the event loop and costs it little.

Records are put on a queue as they are (no formatting, no copy on the loop) and a writer
thread formats them and writes whatever has queued up with one ``write`` per wake-up. It
wakes at most every ``_LINGER`` seconds: woken per line, at thousands of lines a second, its
wake-ups cost the loop more than the lines (a futex wake and a GIL hand-over each). Log
arguments must not be mutated after the call, which holds for the gateway's own log calls
(strings and numbers). The access log, one line per request, skips even the LogRecord:
``log_line`` queues its finished text with a timestamp (a LogRecord costs ~4 µs to build).
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

#: Records formatted and written per wake-up at most, so a flood still flushes regularly.
_BATCH = 4096
#: Seconds the writer lets lines gather after a write, unless it is being stopped.
_LINGER = 0.05
_STOP = None


class _Formatter(logging.Formatter):
    """``time level logger message``, with the time formatted once per second, not per record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.stack_info:
            return super().format(record)
        return self.line(record.created, record.levelname, record.name, record.getMessage(), record.msecs)

    def line(self, created: float, level: str, name: str, message: str, msecs: float | None = None) -> str:
        """One line as ``format`` writes it, from its parts."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        if msecs is None:
            msecs = (created - second) * 1000
        return f"{self._stamp},{int(msecs):03d} {level} {name} {message}"


#: A line queued by ``log_line``: (time.time(), logger name, text), written at INFO.
_Line = tuple[float, str, str]
_Item = logging.LogRecord | _Line | None


class _Enqueue(logging.Handler):
    def __init__(self, records: queue.SimpleQueue[_Item]) -> None:
        super().__init__()
        self._records = records

    def emit(self, record: logging.LogRecord) -> None:
        self._records.put(record)

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle takes a lock per record; SimpleQueue.put is already thread-safe.
        if self.filter(record):
            self.emit(record)
        return True


class _Writer(threading.Thread):
    def __init__(self, records: queue.SimpleQueue[_Item], stream: TextIO, formatter: _Formatter) -> None:
        super().__init__(name="log-writer", daemon=True)
        self._records = records
        self._stream = stream
        self._formatter = formatter
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            batch = [self._records.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            lines = [self._line(r) for r in batch if r is not _STOP]
            if lines:
                self._stream.write("".join(lines))
                self._stream.flush()
            if stop:
                return
            if len(batch) < _BATCH:
                self.stopping.wait(_LINGER)

    def _line(self, record: logging.LogRecord | _Line) -> str:
        if isinstance(record, tuple):
            return self._formatter.line(record[0], "INFO", record[1], record[2]) + "\n"
        try:
            return self._formatter.format(record) + "\n"
        except Exception:  # noqa: BLE001 - a bad log call must not stop logging
            return f"{record.levelname} {record.name} unformattable log record: {record.msg!r}\n"


#: The writer thread's queue while ``setup_logging`` is in force.
_queue: queue.SimpleQueue[_Item] | None = None


def log_line(logger: logging.Logger, text: str) -> None:
    """Log ``text`` at INFO on ``logger``, through the writer thread without a LogRecord when
    ``setup_logging`` is in force (the caller checks the level), else as a plain record."""
    records = _queue
    if records is not None:
        records.put((time.time(), logger.name, text))
    else:
        logger.info("%s", text)


def setup_logging(stream: TextIO = sys.stderr, level: int = logging.INFO) -> Callable[[], None]:
    """Route every log record through the writer thread; flushed at interpreter exit, or
    earlier by calling the function returned."""
    global _queue
    records: queue.SimpleQueue[_Item] = queue.SimpleQueue()
    writer = _Writer(records, stream, _Formatter())
    writer.start()
    _queue = records

    def stop() -> None:
        global _queue
        _queue = None
        writer.stopping.set()
        records.put(_STOP)
        writer.join(timeout=5)

    atexit.register(stop)
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(records)]
    root.setLevel(level)
    return stop
