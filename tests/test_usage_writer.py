"""The usage writer's spill file: a damaged line, a dead process's unfinished replay, and a
writer task that died, each without losing the records that can be kept."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from gateway import metrics
from gateway.sinks.records import UsageRecord
from gateway.sinks.writer import BatchWriter


class MemorySink:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.rows: list[UsageRecord] = []

    async def open(self) -> None:
        pass

    async def write(self, records: list[UsageRecord]) -> None:
        self.rows.extend(records)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        pass


def record(i: int) -> UsageRecord:
    return UsageRecord(request_id=f"r{i}", event_time=1e9 + i, api_type="t", status_code=200)


def line(i: int) -> bytes:
    return msgspec.json.encode(record(i)) + b"\n"


async def write_through(spill_dir: Path, *records: UsageRecord) -> MemorySink:
    """A writer started on ``spill_dir`` (replaying what is there), given ``records``, closed."""
    sink = MemorySink()
    writer = BatchWriter(sink, spill_dir, batch_size=10, flush_interval=0.001)
    await writer.start()
    for r in records:
        writer.submit(r)
    await writer.flushed()
    await writer.close()
    return sink


async def test_a_damaged_spill_line_is_set_aside_and_the_rest_replayed(tmp_path: Path) -> None:
    (tmp_path / "usage-spill-1.jsonl").write_bytes(line(0) + b'{"request_id": "r1", "event_ti\n' + line(2) + b"\x00\x00\n")
    rejected = metrics.USAGE_REJECTED._value.get()  # noqa: SLF001 - a counter read
    sink = await write_through(tmp_path, record(3))
    assert sorted(r.request_id for r in sink.rows) == ["r0", "r2", "r3"]
    assert metrics.USAGE_REJECTED._value.get() - rejected == 2  # noqa: SLF001
    (aside,) = tmp_path.glob("usage-rejected-*.jsonl")
    assert aside.read_bytes() == b'{"request_id": "r1", "event_ti\n\x00\x00\n'
    assert not list(tmp_path.glob("usage-spill-*"))


async def test_a_replay_a_dead_process_left_unfinished_is_replayed(tmp_path: Path) -> None:
    (tmp_path / "usage-spill-4242.replaying").write_bytes(line(0) + line(1))
    sink = await write_through(tmp_path, record(2))
    assert sorted(r.request_id for r in sink.rows) == ["r0", "r1", "r2"]
    assert not list(tmp_path.glob("usage-spill-*"))


async def test_close_keeps_queued_records_when_the_writer_task_died(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sink = MemorySink()
    writer = BatchWriter(sink, tmp_path, batch_size=10, flush_interval=0.001, queue_size=3)

    def broken() -> tuple[list[UsageRecord], bool]:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(writer, "_take_batch", broken)
    await writer.start()
    writer.submit(record(0))  # the task takes it, then dies
    with pytest.raises(RuntimeError):
        await writer._task  # type: ignore[misc]  # noqa: SLF001 - wait for the death the test caused
    for i in range(1, 5):  # three fit in the queue, the fourth spills at once
        writer.submit(record(i))
    await writer.close()  # must return, not wait for room in a queue nobody drains
    spilled = (tmp_path / f"usage-spill-{os.getpid()}.jsonl").read_bytes().splitlines()
    assert sorted(msgspec.json.decode(s, type=UsageRecord).request_id for s in spilled) == ["r1", "r2", "r3", "r4"]


def test_sqlite_times_match_datetimes_formatting() -> None:
    import random
    from datetime import datetime, timezone

    from gateway.sinks.sqlite import sqlite_time

    rng = random.Random(7)
    stamps = [1700000000.9999996, 1700000000.0, 1693456711.9452386, *(rng.uniform(1e9, 2e9) for _ in range(20000))]
    for ts in stamps:
        assert sqlite_time(ts) == datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"), ts


@pytest.mark.parametrize("n", [1, 3, 345, 1000])
async def test_sqlite_batches_of_any_size_land_whole_and_in_order(tmp_path: Path, n: int) -> None:
    # Batches go in as multi-row INSERTs of 256, 64, 16, 4 and 1 rows: 345 uses every size.
    import sqlite3

    from gateway.sinks.sqlite import SQLiteUsageSink

    sink = SQLiteUsageSink(tmp_path / "usage.db")
    await sink.open()
    records = [UsageRecord(request_id=f"r{i}", event_time=1e9 + i, api_type="t", status_code=200 + i % 7,
                           request_tags={"i": str(i)}, input_tokens=i) for i in range(n)]
    await sink.write(records)
    await sink.close()
    conn = sqlite3.connect(tmp_path / "usage.db")
    rows = conn.execute("SELECT request_id, status_code, input_tokens, json_extract(request_tags, '$.i') "
                        "FROM usage ORDER BY rowid").fetchall()
    conn.close()
    assert rows == [(f"r{i}", 200 + i % 7, i, str(i)) for i in range(n)]
