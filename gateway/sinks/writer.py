"""A bounded queue in front of a sink, drained by one background task in batches: one
writer for the usage table, one for the inference table (``table`` names its files).

The request path only calls ``submit`` (a ``put_nowait``). The writer flushes when a batch
is full or ``flush_interval`` has passed, and drains the queue on close. When the sink
fails, the batch is appended to a spill file (JSON lines) under the data directory and
replayed once the sink accepts writes again, so a record is not lost to an outage. If the
queue itself is full (the sink is far behind), the record goes straight to the spill file.

A spill line that is not a record (a torn write, a disk error) is moved aside to
``<table>-rejected-<pid>.jsonl`` and counted, never allowed to stop the writer. A replay
that fails half way (the sink goes down again and the disk is full) leaves its
``.replaying`` file, finished by the next replay. A process that died leaves its spill,
``.replaying`` or ``.claimed-*`` files: a writer starting later takes them over, so after a
crash a row may be written twice (``request_id`` tells) but never lost. Spill files are
read a batch of lines at a time and copied in chunks, so a long outage's spill is replayed
without holding it in memory.

Shutdown waits ``close_timeout`` for the writer to finish; a write still stuck then is
abandoned, and its batch and everything still queued are spilled for the next start. The
abandoned write may still land (a SQLite write runs on in its thread), so such a row too
may be written twice, never lost.

Each writer holds a lock (``<table>-spill-<pid>.lock``, flock) for its life, so a worker
starting beside live siblings leaves their files alone; a lock dies with its process, so
a pid reused by another program does not keep a dead worker's files from being taken.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import msgspec
from prometheus_client import Counter

from gateway import metrics
from gateway.sinks.records import UsageRecord

try:
    import fcntl
except ImportError:  # not on Windows: every other writer's files count as left by a dead one
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("gateway.sinks")
_encode = msgspec.json.Encoder()

#: How long close() waits for the writer to write what is queued. A healthy database writes
#: a full queue in a second or two; a write stuck longer (a lock held by another session, a
#: server gone silent) must not hold up shutdown past a container's grace period (30 s by
#: default on Kubernetes, and the usage and inference writers close one after the other).
CLOSE_TIMEOUT_S = 10.0
#: Spill files are copied in pieces of this size, never read whole.
_COPY_CHUNK = 1 << 16


class WriteAbandoned(Exception):
    """close() stopped waiting for a sink write: its records are not known to be written."""


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
        counters: WriterCounters = USAGE_COUNTERS, close_timeout: float = CLOSE_TIMEOUT_S,
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
        self._close_timeout = close_timeout
        # Set by close() when it stops waiting: writes then fail at once and their rows spill.
        self._give_up: asyncio.Future[None] | None = None
        self._abandoned: asyncio.Task[None] | None = None  # a write given up on, still unwinding
        self._spill = spill_dir / f"{table}-spill-{os.getpid()}.jsonl"
        self._replaying = self._spill.with_suffix(".replaying")
        self._lock_path = self._spill.with_suffix(".lock")
        self._lock_fd: int | None = None
        # usage-spill-<pid>.jsonl | .replaying, and usage-spill-<pid>.claimed-<claimer>: the owner's pid.
        self._owned_by = re.compile(rf"^{re.escape(table)}-spill-(\d+)\.(?:jsonl|replaying|claimed-(\d+))$")
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
            try:
                self._append_spill([record])
            except OSError:  # never into the request that is being answered; never unsaid either
                log.exception("%s writer: queue full and spill file unwritable; record %s is lost", self._table,
                              getattr(record, "request_id", "?"))

    async def start(self) -> None:
        """Open the sink and start writing; a sink that cannot be opened now is retried at
        each write, with records spilled to disk meanwhile."""
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _hold_lock(self._lock_path)
        try:
            await self.sink.open()
        except Exception as exc:  # noqa: BLE001 - start anyway: the spill file keeps the rows
            log.error("%s sink unreachable at start (%s); spilling records until it answers",
                      self._table, str(exc) or type(exc).__name__)
        self._claim_orphan_spills()
        self._give_up = asyncio.get_running_loop().create_future()
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

        The writer is stopped by a sentinel behind the queued records. If it has not
        finished within ``close_timeout`` (a write is stuck), the write in flight is
        abandoned: it and every record still queued go to the spill file, replayed at the
        next start. If the writer task died, what is still queued goes to the spill file too.
        """
        if self._task is not None:
            if not self._task.done():
                # The queue may be full: the sentinel goes in once the writer makes room.
                stop = asyncio.ensure_future(self._queue.put(None))
                await asyncio.wait({self._task}, timeout=self._close_timeout)
                if not self._task.done():
                    log.error("%s writer: still writing after %g s at shutdown; the write in flight and what is "
                              "queued go to the spill file for the next start", self._table, self._close_timeout)
                    assert self._give_up is not None
                    self._give_up.set_result(None)
                    await asyncio.wait({self._task})  # only spill files are written from here on
                stop.cancel()
            if not self._task.cancelled() and self._task.exception() is not None:
                log.error("%s writer task had failed; spilling what it left", self._table, exc_info=self._task.exception())
            self._task = None
        leftovers = [r for r in (self._queue.get_nowait() for _ in range(self._queue.qsize())) if r is not None]
        if leftovers:
            self._counters.spilled.inc(len(leftovers))
            await asyncio.to_thread(self._append_spill, leftovers)
        self._idle.set()
        try:
            await self.sink.close()
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        # Removed while still held: a writer looking at it meanwhile sees it taken, then gone.
        if self._lock_fd is not None:
            try:
                self._lock_path.unlink(missing_ok=True)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

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

    def _replay_due(self) -> bool:
        return self._spill.exists() or self._replaying.exists()

    async def _replay_logged(self) -> None:
        try:
            await self._replay()
        except Exception:  # noqa: BLE001 - the rows stay in the .replaying file for the next replay
            log.exception("%s writer: replaying the spill file failed; it is kept for the next replay", self._table)

    async def _run(self) -> None:
        if self._replay_due():
            await self._replay_logged()  # left by an earlier run or a dead worker
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

    async def _sink_write(self, records: list[Any]) -> None:
        """``sink.write``, or WriteAbandoned once close() has stopped waiting for it."""
        assert self._give_up is not None
        if self._give_up.done():
            raise WriteAbandoned
        write = asyncio.ensure_future(self.sink.write(records))
        await asyncio.wait({write, self._give_up}, return_when=asyncio.FIRST_COMPLETED)
        if not write.done():
            # Not awaited: a write stuck on the database may take a while to unwind.
            write.cancel()
            write.add_done_callback(_ignore_outcome)
            self._abandoned = write  # a reference, so the task is not collected mid-unwind
            raise WriteAbandoned
        write.result()

    async def _write(self, batch: list[Any]) -> None:
        try:
            await self._sink_write(batch)
        except Exception as exc:  # noqa: BLE001 - any sink failure means: keep the rows on disk
            log.warning("%s sink write failed (%s); spilling %d records", self._table, type(exc).__name__, len(batch))
            self._counters.spilled.inc(len(batch))
            await asyncio.to_thread(self._append_spill, batch)
            return
        self._counters.written.inc(len(batch))
        if self._replay_due():
            await self._replay_logged()

    def _read_batch(self, lines: BinaryIO) -> list[Any]:
        """The next records of a spill file, at most a batch; lines that are not records are moved aside."""
        records: list[Any] = []
        rejected: list[bytes] = []
        while len(records) < self._batch_size and (line := lines.readline()):
            if not line.strip():
                continue
            try:
                records.append(self._decode.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError):
                rejected.append(line.removesuffix(b"\n"))
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

    def _put_back(self, batch: list[Any], rest: BinaryIO) -> None:
        """A replayed batch the sink did not take, and the lines after it, back into the spill file."""
        self._append_spill(batch)
        with self._spill.open("ab") as out:
            _copy_lines(rest, out)

    def _claim_orphan_spills(self) -> None:
        # Files of earlier (or dead) processes: spills, replays and claims they did not finish.
        # Each is taken over by an atomic rename, so two workers starting together never
        # replay the same file; a live writer's files are left to it (see the docstring).
        for path in sorted(self._spill_dir.glob(f"{self._table}-spill-*")):
            match = self._owned_by.match(path.name)
            if match is None or path == self._spill:
                continue
            owner = int(match.group(2) or match.group(1))
            if owner != os.getpid() and _lock_held(self._spill_dir / f"{self._table}-spill-{owner}.lock"):
                continue
            claimed = path.with_name(f"{path.stem}.claimed-{os.getpid()}")
            try:
                if path != claimed:
                    path.rename(claimed)
                _append_file(self._spill, claimed)
                claimed.unlink()
            except OSError as exc:  # another writer took it first, or the disk failed: it is not lost
                log.warning("%s spill file %s could not be taken over (%s)", self._table, path.name, exc)

    def _take_spill(self) -> None:
        """Move the spill file to the .replaying file; a replay left unfinished there is kept."""
        if not self._spill.exists():
            return
        if not self._replaying.exists():
            self._spill.rename(self._replaying)
            return
        _append_file(self._replaying, self._spill)
        self._spill.unlink()

    async def _replay(self) -> None:
        replaying = self._replaying
        try:
            await asyncio.to_thread(self._take_spill)
            lines = await asyncio.to_thread(replaying.open, "rb")
        except OSError as exc:
            log.error("%s spill file %s could not be read (%s); it stays for the next replay", self._table,
                      replaying, exc)
            return
        with lines:
            while batch := await asyncio.to_thread(self._read_batch, lines):
                try:
                    await self._sink_write(batch)
                except Exception:  # noqa: BLE001 - still down, or abandoned at close: back to the spill file
                    await asyncio.to_thread(self._put_back, batch, lines)
                    break
                self._counters.written.inc(len(batch))
        await asyncio.to_thread(replaying.unlink)


def _ignore_outcome(write: asyncio.Future[None]) -> None:
    # An abandoned write's own failure was already answered by spilling its rows.
    if not write.cancelled():
        write.exception()


def _copy_lines(source: BinaryIO, out: BinaryIO) -> None:
    """Copy the rest of ``source`` in chunks, as whole lines: a torn last line gets its end,
    so it cannot spoil the next record."""
    last = b"\n"
    while chunk := source.read(_COPY_CHUNK):
        out.write(chunk)
        last = chunk[-1:]
    if last != b"\n":
        out.write(b"\n")


def _append_file(path: Path, source: Path) -> None:
    """Append the file ``source`` to ``path`` as whole lines (see _copy_lines)."""
    with source.open("rb") as src, path.open("ab") as out:
        _copy_lines(src, out)


def _hold_lock(path: Path) -> int | None:
    """Take this writer's lock, held until ``close``; None where there is no flock or it
    stays taken (another host's process of the same pid on a shared data directory)."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    for _ in range(100):  # a writer looking at the lock holds it for an instant
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            time.sleep(0.01)
    os.close(fd)
    log.error("%s is held by another live process: is the data directory shared between hosts or "
              "containers? Spill files of this pid may be taken over by others", path)
    return None


def _lock_held(path: Path) -> bool:
    """Whether a live writer holds the lock at ``path`` (a missing lock is no writer's)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing lets go of a lock taken here
    return False
