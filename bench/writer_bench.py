"""Rows per second of the gateway's BatchWriter into SQLite or PostgreSQL (one process, one core).

    python -m bench.writer_bench --sink sqlite --rows 200000 --dir /tmp/x
    python -m bench.writer_bench --sink postgres --dsn postgresql://postgres@127.0.0.1:5432/test --rows 200000

It imports ``gateway.sinks`` as they are and submits ``rows`` realistic usage records as
fast as the queue takes them (never overflowing it, so nothing spills), then waits until
the writer has flushed. The ``raw`` figure writes the same rows with the sink alone, in
batches of the same size, with no queue: the ceiling for this sink. PostgreSQL writes go
to a schema of their own, dropped afterwards. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from bench.loop import run_with_uvloop


def records(n: int):  # type: ignore[no-untyped-def]
    from gateway.sinks.records import AttemptRecord, UsageRecord

    now = time.time()
    return [
        UsageRecord(
            request_id=uuid.uuid4().hex, event_time=now + i * 1e-4, api_type="mlflow/v1/chat/completions",
            endpoint="team-chat", provider="openai", provider_model="gpt-4.1-mini", requester="alice@example.com",
            user_agent="OpenAI/Python 1.99.0", status_code=200, input_tokens=812, output_tokens=164, total_tokens=976,
            cache_read_tokens=512, latency_ms=412.5, time_to_first_byte_ms=180.25, streaming=bool(i % 2),
            request_tags={"project": "chatbot", "team": "ml"},
            attempts=[AttemptRecord("openai/gpt-4.1-mini", 200, 410.0)],
        )
        for i in range(n)
    ]


async def _through_writer(sink, rows, spill_dir: Path, batch: int, queue: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    from gateway import metrics
    from gateway.sinks.writer import BatchWriter

    spilled0 = metrics.USAGE_SPILLED._value.get()  # noqa: SLF001 - a counter read, for the check
    writer = BatchWriter(sink, spill_dir, batch_size=batch, flush_interval=0.2, queue_size=queue)
    await writer.start()
    t0 = time.perf_counter()
    i = 0
    while i < len(rows):
        room = queue - writer._queue.qsize() - 1  # noqa: SLF001 - pace the producer to the queue
        if room <= 0:
            await asyncio.sleep(0.001)
            continue
        for r in rows[i : i + min(room, 5000)]:
            writer.submit(r)
        i += min(room, 5000)
        await asyncio.sleep(0)
    await writer.flushed()
    elapsed = time.perf_counter() - t0
    await writer.close()
    return elapsed, int(metrics.USAGE_SPILLED._value.get() - spilled0)  # noqa: SLF001


async def _raw(sink, rows, batch: int) -> float:  # type: ignore[no-untyped-def]
    await sink.open()
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        await sink.write(rows[i : i + batch])
    elapsed = time.perf_counter() - t0
    await sink.close()
    return elapsed


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    rows = records(args.rows)
    out: dict[str, object] = {"sink": args.sink, "rows": args.rows, "batch_size": args.batch}
    if args.sink == "sqlite":
        from gateway.sinks.sqlite import SQLiteUsageSink

        d = Path(args.dir)
        c0 = time.process_time()
        elapsed, spilled = await _through_writer(SQLiteUsageSink(d / "w.db"), rows, d / "spill", args.batch, args.queue)
        out["cpu_s"] = round(time.process_time() - c0, 3)
        raw = await _raw(SQLiteUsageSink(d / "raw.db"), rows, args.batch)
    else:
        import asyncpg
        from gateway.sinks.postgres import PostgresUsageSink

        schema = f"bench_usage_{os.getpid()}"
        admin = await asyncpg.connect(args.dsn)
        await admin.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in args.dsn else "?"
        dsn = f"{args.dsn}{sep}search_path={schema}"  # asyncpg passes unknown DSN parameters as server settings
        try:
            c0 = time.process_time()
            elapsed, spilled = await _through_writer(PostgresUsageSink(dsn), rows, Path(args.dir) / "spill", args.batch, args.queue)
            out["cpu_s"] = round(time.process_time() - c0, 3)
            count = await admin.fetchval(f"SELECT count(*) FROM {schema}.usage")
            out["rows_in_table"] = count
            await admin.execute(f"TRUNCATE {schema}.usage")
            raw = await _raw(PostgresUsageSink(dsn), rows, args.batch)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()
    out.update({
        "seconds": round(elapsed, 3), "rows_per_s": round(args.rows / elapsed), "spilled": spilled,
        "raw_seconds": round(raw, 3), "raw_rows_per_s": round(args.rows / raw),
    })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sink", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--queue", type=int, default=100_000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--dir", default=".")
    args = parser.parse_args()
    print(json.dumps(run_with_uvloop(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
