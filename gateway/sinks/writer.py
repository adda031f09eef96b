"""A bounded queue in front of a sink, drained by one background task in batches: one
writer for the usage table, one for the inference table (``table`` names its files).

The request path only calls ``submit`` (a ``put_nowait``). The writer flushes when a batch
is full or ``flush_interval`` has passed, and drains the queue on close. When the sink
fails, the batch is appended to a spill file (JSON lines) under the data directory and
replayed once the sink accepts writes again, so a record is not lost to an outage. If the
queue itself is full (the sink is far behind), the record goes straight to the spill file.

A spill line that is not a record (a torn write, a disk error) is moved aside to
``<table>-rejected-<pid>.jsonl`` and counted, never allowed to stop the writer. A process
that died mid-replay leaves ``*.replaying``: the next start replays it again, so after a
crash a row may be written twice (``request_id`` tells) but never lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import msgspec
from prometheus_client import Counter

from gateway import metrics
from gateway.sinks.records import UsageRecord

log = logging.getLogger("gateway.sinks")
_encode = msgspec.json.Encoder()


class UsageSink(Protocol):
    """A table that takes records in batches."""

    async def open(self) -> None: ...
    async def write(self, records: list[Any]) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class WriterCounters(msgspec.Struct, frozen=True):
    """The metrics one writer moves."""

    written: Counter
    spilled: Counter
    rejected: Counter


USAGE_COUNTERS = WriterCounters(metrics.USAGE_WRITTEN, metrics.USAGE_SPILLED, metrics.USAGE_REJECTED)


class BatchWriter:
    def __init__(
        self, sink: UsageSink, spill_dir: Path, *,
        batch_size: int = 1000, flush_interval: float = 0.2, queue_size: int = 100_000,
        table: str = "usage", record_type: type[msgspec.Struct] = UsageRecord,
        counters: WriterCounters = USAGE_COUNTERS,
    ) -> None:
        self.sink = sink
        # None is the stop sentinel that close() queues behind the last record.
        self._queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._spill_dir = spill_dir
        self._table = table
        self._decode = msgspec.json.Decoder(record_type)
        self._counters = counters
        self._spill = spill_dir / f"{table}-spill-{os.getpid()}.jsonl"
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._submitted = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def submit(self, record: Any) -> None:
        """Queue a record; never waits."""
        self._submitted += 1
        if self._waiters:
            self._wake_waiters()
        try:
            self._queue.put_nowait(record)
            self._idle.clear()
        except asyncio.QueueFull:
            self._counters.spilled.inc()
            self._append_spill([record])

    async def start(self) -> None:
        """Open the sink and start writing; a sink that cannot be opened now is retried at
        each write, with records spilled to disk meanwhile."""
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self.sink.open()
        except Exception as exc:  # noqa: BLE001 - start anyway: the spill file keeps the rows
            log.error("%s sink unreachable at start (%s); spilling records until it answers",
                      self._table, str(exc) or type(exc).__name__)
        self._claim_orphan_spills()
        self._task = asyncio.create_task(self._run(), name=f"{self._table}-writer")

    async def flushed(self) -> None:
        """Wait until everything submitted so far is written (or spilled)."""
        await self._idle.wait()

    async def wait_submitted(self, count: int) -> None:
        """Wait until ``count`` records were submitted in all (lets tests wait for finished requests)."""
        if self._submitted < count:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((count, future))
            await future

    async def close(self) -> None:
        """Write everything queued so far, then close the sink.

        The writer is stopped by a sentinel behind the queued records, never cancelled
        mid-write: a write runs in a thread that a cancellation would not stop. If the
        writer task died, what is still queued goes to the spill file instead.
        """
        if self._task is not None:
            if not self._task.done():
                # The queue may be full; stop waiting for room if the task dies meanwhile.
                stop = asyncio.ensure_future(self._queue.put(None))
                await asyncio.wait({stop, self._task}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
            await asyncio.wait({self._task})
            if not self._task.cancelled() and self._task.exception() is not None:
                log.error("%s writer task had failed; spilling what it left", self._table, exc_info=self._task.exception())
            self._task = None
        leftovers = [r for r in (self._queue.get_nowait() for _ in range(self._queue.qsize())) if r is not None]
        if leftovers:
            self._counters.spilled.inc(len(leftovers))
            await asyncio.to_thread(self._append_spill, leftovers)
        self._idle.set()
        await self.sink.close()

    def _wake_waiters(self) -> None:
        waiting = []
        for count, future in self._waiters:
            if self._submitted >= count:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((count, future))
        self._waiters = waiting

    def _take_batch(self) -> tuple[list[Any], bool]:
        """Up to a batch of queued records, and whether the stop sentinel was reached."""
        batch: list[Any] = []
        while len(batch) < self._batch_size and not self._queue.empty():
            record = self._queue.get_nowait()
            if record is None:
                return batch, True
            batch.append(record)
        return batch, False

    async def _run(self) -> None:
        if self._spill.exists():
            await self._replay()  # left by an earlier run or a dead worker
        while True:
            first = await self._queue.get()
            if first is None:
                return
            if self._queue.qsize() < self._batch_size - 1:
                # Give the batch a moment to fill: many rows per statement is the point.
                await asyncio.sleep(self._flush_interval)
            rest, stop = self._take_batch()
            try:
                await self._write([first, *rest])
            except Exception:  # noqa: BLE001 - e.g. the spill disk failed: keep serving later records
                log.exception("%s writer: %d records could not be written or spilled", self._table, 1 + len(rest))
            if stop:
                return
            if self._queue.empty():
                self._idle.set()

    async def _write(self, batch: list[Any]) -> None:
        try:
            await self.sink.write(batch)
        except Exception as exc:  # noqa: BLE001 - any sink failure means: keep the rows on disk
            log.warning("%s sink write failed (%s); spilling %d records", self._table, type(exc).__name__, len(batch))
            self._counters.spilled.inc(len(batch))
            await asyncio.to_thread(self._append_spill, batch)
            return
        self._counters.written.inc(len(batch))
        if self._spill.exists():
            await self._replay()

    def _read_spill(self, path: Path) -> list[Any]:
        """The records of a spill file; lines that are not records are moved aside."""
        records: list[Any] = []
        rejected: list[bytes] = []
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                records.append(self._decode.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError):
                rejected.append(line)
        if rejected:
            aside = self._spill_dir / f"{self._table}-rejected-{os.getpid()}.jsonl"
            with aside.open("ab") as f:
                f.write(b"".join(line + b"\n" for line in rejected))
            self._counters.rejected.inc(len(rejected))
            log.error("%s spill: %d lines were not records; kept in %s", self._table, len(rejected), aside)
        return records

    def _append_spill(self, batch: list[Any]) -> None:
        with self._spill.open("ab") as f:
            f.write(b"".join(_encode.encode(r) + b"\n" for r in batch))

    def _claim_orphan_spills(self) -> None:
        # Spills of earlier (or dead) processes, and replays they did not finish: take them
        # over by an atomic rename, so two workers starting together never replay the same file.
        pattern = f"{self._table}-spill-*"
        for path in [*self._spill_dir.glob(pattern + ".jsonl"), *self._spill_dir.glob(pattern + ".replaying")]:
            if path == self._spill:
                continue
            claimed = path.with_name(f"{path.stem}.claimed-{os.getpid()}")
            try:
                path.rename(claimed)
            except OSError:
                continue
            with self._spill.open("ab") as out:
                out.write(claimed.read_bytes())
            claimed.unlink()

    async def _replay(self) -> None:
        replaying = self._spill.with_suffix(".replaying")
        try:
            await asyncio.to_thread(self._spill.rename, replaying)
            records = await asyncio.to_thread(self._read_spill, replaying)
        except OSError as exc:
            log.error("%s spill file %s could not be read (%s); it stays for the next start", self._table, self._spill, exc)
            return
        for i in range(0, len(records), self._batch_size):
            chunk = records[i : i + self._batch_size]
            try:
                await self.sink.write(chunk)
            except Exception:  # noqa: BLE001 - still down: back to the spill file
                await asyncio.to_thread(self._append_spill, records[i:])
                break
            self._counters.written.inc(len(chunk))
        await asyncio.to_thread(replaying.unlink)
