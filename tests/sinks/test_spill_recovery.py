"""The usage writer's spill files across failures: a replay cut short, a file a live
sibling worker still owns, a claim cut short by a crash. No record may be lost."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import msgspec

from gateway.sinks.records import UsageRecord
from gateway.sinks.writer import BatchWriter


class FlakySink:
    """A sink whose writes fail while ``down`` is set, or as ``failures`` scripts them."""

    def __init__(self) -> None:
        self.rows: list[UsageRecord] = []
        self.down = False
        self.failures: list[bool] = []  # popped per write when not empty: True fails that write

    async def open(self) -> None:
        pass

    async def write(self, records: list[UsageRecord]) -> None:
        fail = self.failures.pop(0) if self.failures else self.down
        if fail:
            raise ConnectionError("database down")
        self.rows.extend(records)

    async def ping(self) -> bool:
        return not self.down

    async def close(self) -> None:
        pass


def record(i: int) -> UsageRecord:
    return UsageRecord(request_id=f"r{i}", event_time=1e9 + i, api_type="t", status_code=200)


def lines(*ids: int) -> bytes:
    return b"".join(msgspec.json.encode(record(i)) + b"\n" for i in ids)


def ids(sink: FlakySink) -> list[str]:
    return sorted(r.request_id for r in sink.rows)


def writer_on(spill_dir: Path, sink: FlakySink) -> BatchWriter:
    return BatchWriter(sink, spill_dir, batch_size=10, flush_interval=0.001)


async def submit(writer: BatchWriter, *records: UsageRecord) -> None:
    for r in records:
        writer.submit(r)
    await asyncio.wait_for(writer.flushed(), 10)  # a guard against a hang, not a clock


class DiskFullOnce:
    """``_append_spill`` failing once, as a full disk does, then working again."""

    def __init__(self, writer: BatchWriter) -> None:
        self._append = writer._append_spill  # noqa: SLF001 - the seam a disk failure goes through
        self.armed = False

    def __call__(self, batch: list[UsageRecord]) -> None:
        if self.armed:
            self.armed = False
            raise OSError(28, "No space left on device")
        self._append(batch)


async def test_a_replay_cut_short_is_finished_later_not_overwritten(tmp_path: Path) -> None:
    sink = FlakySink()
    writer = writer_on(tmp_path, sink)
    disk = DiskFullOnce(writer)
    writer._append_spill = disk  # type: ignore[method-assign]  # noqa: SLF001
    await writer.start()
    sink.down = True
    await submit(writer, record(0))  # spilled
    sink.down = False
    sink.failures = [False, True]  # r1 is written; the replay of r0 then fails...
    disk.armed = True  # ...and so does putting r0 back: it stays in the .replaying file
    await submit(writer, record(1))
    sink.down = True
    await submit(writer, record(2))  # a new spill file beside the unfinished replay
    sink.down = False
    await submit(writer, record(3))  # written, then both replayed
    await writer.close()
    assert ids(sink) == ["r0", "r1", "r2", "r3"]
    assert not list(tmp_path.glob("usage-spill-*"))


async def test_a_failed_replay_at_start_does_not_stop_the_writer(tmp_path: Path) -> None:
    (tmp_path / f"usage-spill-{os.getpid()}.jsonl").write_bytes(lines(0))  # an earlier process of this pid
    sink = FlakySink()
    sink.failures = [True]  # the replay at start fails, and putting the rows back too
    writer = writer_on(tmp_path, sink)
    disk = DiskFullOnce(writer)
    disk.armed = True
    writer._append_spill = disk  # type: ignore[method-assign]  # noqa: SLF001
    await writer.start()
    await submit(writer, record(1))  # still written, and the unfinished replay with it
    await writer.close()
    assert ids(sink) == ["r0", "r1"]
    assert not list(tmp_path.glob("usage-spill-*"))


def hold_lock(spill_dir: Path, pid: int) -> int:
    """Hold the lock a live writer of ``pid`` holds (a lock taken through another open file
    conflicts even within one process)."""
    fd = os.open(spill_dir / f"usage-spill-{pid}.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


async def test_spill_files_of_a_live_sibling_are_left_to_it_and_taken_once_it_is_gone(tmp_path: Path) -> None:
    sibling = os.getpid() + 100_000  # no such process: only its lock says it lives
    fd = hold_lock(tmp_path, sibling)
    (tmp_path / f"usage-spill-{sibling}.jsonl").write_bytes(lines(0))
    (tmp_path / f"usage-spill-{sibling}.replaying").write_bytes(lines(1))
    sink = FlakySink()
    writer = writer_on(tmp_path, sink)
    await writer.start()
    await submit(writer, record(2))
    await writer.close()
    assert ids(sink) == ["r2"]
    assert (tmp_path / f"usage-spill-{sibling}.jsonl").read_bytes() == lines(0)
    assert (tmp_path / f"usage-spill-{sibling}.replaying").read_bytes() == lines(1)
    os.close(fd)  # the sibling exits (or dies): its lock goes with it
    writer = writer_on(tmp_path, sink)
    await writer.start()
    await submit(writer)
    await writer.close()
    assert ids(sink) == ["r0", "r1", "r2"]
    assert not list(tmp_path.glob("usage-spill-*.jsonl")) and not list(tmp_path.glob("usage-spill-*.replaying"))


async def test_a_claim_cut_short_by_a_crash_is_taken_over(tmp_path: Path) -> None:
    # A process took over pid 7's spill (renamed it to .claimed-<its pid>) and died before copying it.
    (tmp_path / f"usage-spill-7.claimed-{os.getpid() + 100_000}").write_bytes(lines(0, 1))
    sink = FlakySink()
    writer = writer_on(tmp_path, sink)
    await writer.start()
    await submit(writer, record(2))
    await writer.close()
    assert ids(sink) == ["r0", "r1", "r2"]
    assert not [p for p in tmp_path.glob("usage-spill-*") if not p.name.endswith(".lock")]


async def test_a_closed_writer_leaves_no_lock_behind(tmp_path: Path) -> None:
    writer = writer_on(tmp_path, FlakySink())
    await writer.start()
    assert (tmp_path / f"usage-spill-{os.getpid()}.lock").exists()
    await writer.close()
    assert not list(tmp_path.glob("usage-spill-*"))
