"""The load generator: a closed-loop asyncio client process (uvloop) at fixed concurrency.

It runs as its own process, pinned to the load core, and takes jobs as JSON lines on stdin:

    {"url", "headers", "body", "concurrency", "warmup", "duration", "client", "stream",
     "expect_deltas", "stall_ms", "stagger_ms", "grace", "timeout"}

``client`` is ``aiohttp`` (an aiohttp ClientSession: streams, and the latency scenario) or
``raw`` (``bench.rawclient``: a lean keep-alive protocol client for non-streamed load).
Connections open during the warm-up, which is not recorded; then it prints
``{"event": "measuring"}`` (so the orchestrator can read the server's CPU time), records
for ``duration`` seconds, prints ``{"event": "measured"}`` and the result line.

Streams: the warm-up runs one uncounted stream per connection, then the counted streams
start spread over ``stagger_ms``; a stream counts when it started in the window, and the
window ends when the last of those finishes (bounded by ``grace``). Time to first token is
from sending the request to the first delta marker; each marker ``t=<ns>`` is the
upstream's send time, so arrival minus marker is that chunk's delivery delay. A stream
*stalls* when a chunk is later than ``stall_ms``, fewer than ``expect_deltas`` deltas
arrive, or it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp

from bench.bodies import MARKER
from bench.loop import run_with_uvloop
from bench.rawclient import run_closed_loop
from bench.stats import histogram_us, summary_us

MAX_SAMPLES = 2_000_000  # per job: bounds memory whatever the rate


class Job:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.url: str = spec["url"]
        self.headers: dict[str, str] = spec.get("headers", {})
        self.body: bytes = spec.get("body", "").encode()
        self.concurrency: int = int(spec["concurrency"])
        self.warmup: float = float(spec.get("warmup", 1.0))
        self.duration: float = float(spec["duration"])
        self.stream: bool = bool(spec.get("stream", False))
        self.expect_deltas: int = int(spec.get("expect_deltas", 0))
        self.stall_ns: int = int(float(spec.get("stall_ms", 100)) * 1e6)
        self.grace: float = float(spec.get("grace", 15.0))
        self.timeout: float = float(spec.get("timeout", 30.0))
        self.client: str = spec.get("client", "aiohttp")  # or "raw" (bench.rawclient), non-streamed only
        self.stagger: float = float(spec.get("stagger_ms", 0)) / 1000  # streams: spread the starts over this


class Recorder:
    def __init__(self) -> None:
        self.measuring = False
        self.latency: list[int] = []
        self.ttft: list[int] = []
        self.chunk_delay: list[int] = []
        self.ok = 0
        self.errors = 0
        self.error_samples: dict[str, int] = {}
        self.streams = 0
        self.stalls = 0
        self.bytes = 0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5 or what in self.error_samples:
            self.error_samples[what] = self.error_samples.get(what, 0) + 1


async def _one(session: aiohttp.ClientSession, job: Job, rec: Recorder) -> bool:
    t0 = time.perf_counter_ns()
    try:
        async with session.post(job.url, data=job.body, headers=job.headers) as resp:
            data = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        if rec.measuring:
            rec.error(type(exc).__name__)
        return False
    if rec.measuring:
        if status >= 400:
            rec.error(f"HTTP {status}: {data[:120].decode(errors='replace')}")
        elif len(rec.latency) < MAX_SAMPLES:
            rec.ok += 1
            rec.bytes += len(data)
            rec.latency.append(time.perf_counter_ns() - t0)
    return status < 400


async def _one_stream(session: aiohttp.ClientSession, job: Job, rec: Recorder) -> bool:
    counted = rec.measuring
    t0 = time.perf_counter_ns()
    ttft: int | None = None
    deltas = 0
    late = False
    delays: list[int] = []
    carry = b""
    try:
        async with session.post(job.url, data=job.body, headers=job.headers) as resp:
            if resp.status >= 400:
                text = (await resp.read())[:120].decode(errors="replace")
                if counted:
                    rec.streams += 1
                    rec.stalls += 1
                    rec.error(f"HTTP {resp.status}: {text}")
                return False
            async for chunk in resp.content.iter_any():
                now = time.monotonic_ns()
                # Only complete lines: a marker split across reads must not be misread.
                buf = carry + chunk
                cut = buf.rfind(b"\n") + 1
                carry = buf[cut:]
                for m in MARKER.finditer(buf, 0, cut):
                    if ttft is None:
                        ttft = time.perf_counter_ns() - t0
                    delay = now - int(m.group(1))
                    delays.append(delay)
                    late = late or delay > job.stall_ns
                    deltas += 1
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        if counted:
            rec.streams += 1
            rec.stalls += 1
            rec.error(type(exc).__name__)
        return False
    if counted:
        rec.streams += 1
        rec.ok += 1
        if late or deltas < job.expect_deltas:
            rec.stalls += 1
        if len(rec.chunk_delay) < MAX_SAMPLES:
            rec.latency.append(time.perf_counter_ns() - t0)
            rec.chunk_delay.extend(delays)
            if ttft is not None:
                rec.ttft.append(ttft)
    return True


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def run_raw_job(job: Job) -> dict[str, Any]:
    """A non-streamed job on the lean protocol client: connections open during the warm-up."""
    rec = Recorder()
    stop = False

    def done(status: int, ns: int) -> None:
        if rec.measuring:
            if status >= 400:
                rec.error(f"HTTP {status}")
            elif len(rec.latency) < MAX_SAMPLES:
                rec.ok += 1
                rec.latency.append(ns)

    def on_error(what: str) -> None:
        if rec.measuring:
            rec.error(what)

    cpu0 = os.times()
    close = await asyncio.wait_for(
        run_closed_loop(job.url, job.headers, job.body, job.concurrency, done, lambda: not stop, on_error), job.timeout)
    try:
        await asyncio.sleep(job.warmup)
        rec.measuring = True
        emit({"event": "measuring"})
        t0, c0 = time.perf_counter(), os.times()
        await asyncio.sleep(job.duration)
        rec.measuring = False
        window = time.perf_counter() - t0
        emit({"event": "measured"})
        c1 = os.times()
    finally:
        stop = True
        close()
    return _result(job, rec, window, c0, c1, cpu0)


def _result(job: Job, rec: Recorder, window: float, c0: Any, c1: Any, cpu0: Any) -> dict[str, Any]:
    load_cpu = (c1.user + c1.system) - (c0.user + c0.system)
    result: dict[str, Any] = {
        "event": "result",
        "client": job.client if not job.stream else "aiohttp",
        "concurrency": job.concurrency,
        "window_s": round(window, 3),
        "requests": rec.ok,
        "errors": rec.errors,
        "error_samples": rec.error_samples,
        "rps": round(rec.ok / window, 1) if window > 0 else 0.0,
        "latency": summary_us(rec.latency),
        "histogram_us": histogram_us(rec.latency),
        "loadgen_cpu_share": round(load_cpu / window, 3) if window > 0 else None,
        "total_cpu_s": round((c1.user + c1.system) - (cpu0.user + cpu0.system), 3),
    }
    if job.stream:
        result.update({
            "streams": rec.streams,
            "stalls": rec.stalls,
            "ttft": summary_us(rec.ttft),
            "chunk_delay": summary_us(rec.chunk_delay),
        })
    return result


async def run_job(job: Job) -> dict[str, Any]:
    if job.client == "raw" and not job.stream:
        return await run_raw_job(job)
    rec = Recorder()
    stop = False
    one = _one_stream if job.stream else _one
    connector = aiohttp.TCPConnector(limit=job.concurrency, limit_per_host=job.concurrency, keepalive_timeout=120)
    timeout = aiohttp.ClientTimeout(total=job.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)) as session:

        async def worker(offset: float) -> None:
            if offset:
                await asyncio.sleep(offset)
            while not stop:
                if not await one(session, job, rec):
                    await asyncio.sleep(0.01)  # no hot loop against a refusing server

        cpu0 = os.times()
        c = job.concurrency
        if job.stream and job.warmup > 0:
            # Streams: one uncounted stream per connection opens the connections, then all
            # wait for each other, so the window holds only the streams it counts.
            await asyncio.wait_for(asyncio.gather(*(one(session, job, rec) for _ in range(c))), job.timeout + job.grace)
        if job.stream or job.warmup <= 0:
            rec.measuring = True  # the very first requests count: open the window before they start
            emit({"event": "measuring"})
        tasks = [asyncio.create_task(worker(i * job.stagger / c if job.stream else 0.0)) for i in range(c)]
        try:
            if not job.stream and job.warmup > 0:
                await asyncio.sleep(job.warmup)
                rec.measuring = True
                emit({"event": "measuring"})
            t0 = time.perf_counter()
            c0 = os.times()
            await asyncio.sleep(job.duration)
            if not job.stream:
                rec.measuring = False
            window = time.perf_counter() - t0
            stop = True
            if job.stream:
                rec.measuring = False  # streams already counted run to their end
                await asyncio.wait(tasks, timeout=job.grace)
                window = time.perf_counter() - t0
            emit({"event": "measured"})
            c1 = os.times()
        finally:
            stop = True
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return _result(job, rec, window, c0, c1, cpu0)


async def serve_jobs() -> None:
    loop = asyncio.get_running_loop()
    emit({"event": "ready", "pid": os.getpid()})
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        try:
            job = Job(json.loads(line))
            emit(await run_job(job))
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})


def main() -> None:
    run_with_uvloop(serve_jobs())


if __name__ == "__main__":
    main()
