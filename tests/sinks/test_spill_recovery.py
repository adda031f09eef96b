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


class StuckSink(FlakySink):
    """A sink whose writes never finish, as on a database that stopped answering."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()

    async def write(self, records: list[UsageRecord]) -> None:
        self.writing.set()
        await asyncio.Event().wait()


def spilled(spill_dir: Path) -> list[str]:
    text = (spill_dir / f"usage-spill-{os.getpid()}.jsonl").read_bytes()
    return sorted(msgspec.json.decode(line, type=UsageRecord).request_id for line in text.splitlines())


async def replayed_by_next_start(spill_dir: Path) -> list[str]:
    sink = FlakySink()
    writer = writer_on(spill_dir, sink)
    await writer.start()
    await writer.close()
    assert not [p for p in spill_dir.glob("usage-spill-*") if not p.name.endswith(".lock")]
    return ids(sink)


async def test_close_gives_up_on_a_stuck_write_and_spills_it_with_what_is_queued(tmp_path: Path) -> None:
    sink = StuckSink()
    writer = BatchWriter(sink, tmp_path, batch_size=10, flush_interval=0.001, close_timeout=0.01)
    await writer.start()
    writer.submit(record(0))
    await asyncio.wait_for(sink.writing.wait(), 10)
    for i in range(1, 25):  # queued behind the stuck write
        writer.submit(record(i))
    await asyncio.wait_for(writer.close(), 10)  # a guard against a hang, not a clock
    everything = sorted(f"r{i}" for i in range(25))
    assert spilled(tmp_path) == everything
    assert await replayed_by_next_start(tmp_path) == everything


async def test_close_gives_up_on_a_stuck_replay_and_puts_its_rows_back(tmp_path: Path) -> None:
    (tmp_path / "usage-spill-4242.jsonl").write_bytes(lines(*range(15)))  # a dead worker's: replayed at start
    sink = StuckSink()
    writer = BatchWriter(sink, tmp_path, batch_size=10, flush_interval=0.001, close_timeout=0.01)
    await writer.start()
    await asyncio.wait_for(sink.writing.wait(), 10)  # the replay's first batch
    writer.submit(record(15))
    await asyncio.wait_for(writer.close(), 10)
    everything = sorted(f"r{i}" for i in range(16))
    assert spilled(tmp_path) == everything
    assert not list(tmp_path.glob("usage-spill-*.replaying"))
    assert await replayed_by_next_start(tmp_path) == everything


class CountingSink(FlakySink):
    """A sink that keeps only the numbers of the records and the size of each write."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: list[int] = []
        self.writes: list[int] = []

    async def write(self, records: list[UsageRecord]) -> None:
        self.numbers.extend(int(r.request_id[1:]) for r in records)
        self.writes.append(len(records))


async def test_a_spill_far_larger_than_a_batch_is_replayed_in_batches_without_being_read_whole(tmp_path: Path) -> None:
    import tracemalloc

    count, batch = 5000, 50
    padding = "x" * 2000  # a long user agent: about 2 kB a line, 10 MB in all
    with (tmp_path / "usage-spill-4242.jsonl").open("wb") as f:  # a dead worker's: taken over and replayed
        for i in range(count):
            f.write(msgspec.json.encode(msgspec.structs.replace(record(i), user_agent=padding)) + b"\n")
    size = (tmp_path / "usage-spill-4242.jsonl").stat().st_size
    sink = CountingSink()
    writer = BatchWriter(sink, tmp_path, batch_size=batch, flush_interval=0.001)
    tracemalloc.start()
    try:
        await writer.start()
        await submit(writer, record(count))  # written after the replay
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    await writer.close()
    assert sorted(sink.numbers) == list(range(count + 1))
    assert max(sink.writes) == batch and len(sink.writes) == count // batch + 1
    assert peak < size / 5, f"replaying a {size} byte spill took {peak} bytes"
    assert not [p for p in tmp_path.glob("usage-spill-*") if not p.name.endswith(".lock")]
