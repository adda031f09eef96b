"""Load drivers as seen from the orchestrator: our asyncio client process, and wrk.

Both run a request shape at a fixed concurrency and call ``on_window(start|end)`` at the
edges of the measured window, so the caller can read the server's CPU time there.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Child, Supervisor


@dataclass(frozen=True)
class Shape:
    """One request as a load driver sends it."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False


WindowHook = Callable[[str], None]


class AsyncClientDriver:
    """Talks to ``python -m bench.loadgen`` over its stdin/stdout, one job at a time.

    ``client``: ``aiohttp`` (streams, and concurrency 1 in the latency scenario) or ``raw``
    (``bench.rawclient``: lean keep-alive protocol client for non-streamed load).
    """

    def __init__(self, sup: Supervisor, cores: tuple[int, ...]) -> None:
        self._sup = sup
        self._cores = cores
        self._child: Child | None = None
        self._buf = b""

    def _ensure(self) -> Child:
        if self._child is None or not self._child.alive():
            self._buf = b""
            self._child = self._sup.start(
                "loadgen", [sys.executable, "-m", "bench.loadgen"], cores=self._cores,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )
            self._read(self._child, 30)
        return self._child

    def _read(self, child: Child, timeout: float) -> dict[str, Any]:
        """The next JSON line from the load generator, within ``timeout`` seconds."""
        assert child.proc.stdout is not None
        fd = child.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            with selectors.DefaultSelector() as sel:
                sel.register(fd, selectors.EVENT_READ)
                if left <= 0 or not sel.select(left):
                    raise TimeoutError(f"load generator silent for {timeout:.0f}s")
            data = os.read(fd, 65536)
            if not data:
                raise RuntimeError(f"load generator exited:\n{child.log_tail()}")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def run(
        self, shape: Shape, concurrency: int, *, warmup: float, duration: float, on_window: WindowHook | None = None,
        expect_deltas: int = 0, stall_ms: float = 100, timeout: float = 30, grace: float = 15, stagger_ms: float = 0,
        client: str = "aiohttp",
    ) -> dict[str, Any]:
        child = self._ensure()
        assert child.proc.stdin is not None
        job = {
            "url": shape.url, "headers": shape.headers, "body": shape.body.decode(), "stream": shape.stream,
            "concurrency": concurrency, "warmup": warmup, "duration": duration,
            "expect_deltas": expect_deltas, "stall_ms": stall_ms, "timeout": timeout, "grace": grace,
            "stagger_ms": stagger_ms, "client": client,
        }
        child.proc.stdin.write((json.dumps(job) + "\n").encode())
        child.proc.stdin.flush()
        limit = warmup + duration + grace + 2 * timeout + 30  # every wait is bounded
        while True:
            msg = self._read(child, limit)
            event = msg.get("event")
            if event == "measuring" and on_window:
                on_window("start")
            elif event == "measured" and on_window:
                on_window("end")
            elif event == "result":
                msg.pop("event")
                msg["driver"] = msg.pop("client")
                return msg
            elif event == "error":
                raise RuntimeError(f"load generator: {msg['error']}")


_LUA = """
wrk.method = "POST"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
"""


def _lua_string(s: str) -> str:
    return "[==[" + s + "]==]"


class WrkDriver:
    """wrk (C, one thread) with a Lua script for the POST body; no streams."""

    name = "wrk"

    def __init__(self, sup: Supervisor, cores: tuple[int, ...], workdir: Path) -> None:
        self._sup = sup
        self._cores = cores
        self._workdir = workdir
        self._scripts: dict[tuple[str, bytes, tuple[tuple[str, str], ...]], Path] = {}

    @staticmethod
    def available() -> bool:
        return shutil.which("wrk") is not None

    def _script(self, shape: Shape) -> Path:
        key = (shape.url, shape.body, tuple(shape.headers.items()))
        path = self._scripts.get(key)
        if path is None:
            headers = "\n".join(f'wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}' for k, v in shape.headers.items())
            path = self._workdir / f"wrk-{len(self._scripts)}.lua"
            path.write_text(_LUA.format(body=_lua_string(shape.body.decode()), headers=headers))
            self._scripts[key] = path
        return path

    def _wrk(self, shape: Shape, concurrency: int, seconds: float) -> dict[str, Any]:
        argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                "-s", str(self._script(shape)), shape.url]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = self._sup.start("wrk", argv, cores=self._cores, stdout=subprocess.PIPE)
        try:
            out, _ = child.proc.communicate(timeout=seconds + 30)
        finally:
            self._sup.stop(child)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk was reaped in between
        for line in reversed(out.decode(errors="replace").splitlines()):
            if line.startswith("{"):
                summary = json.loads(line)
                summary["cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                return summary
        raise RuntimeError(f"wrk printed no summary:\n{out.decode(errors='replace')[-500:]}\n{child.log_tail()}")

    def run(
        self, shape: Shape, concurrency: int, *, warmup: float, duration: float, on_window: WindowHook | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        if shape.stream:
            raise ValueError("wrk does not measure streams")
        if warmup > 0:
            self._wrk(shape, concurrency, warmup)
        if on_window:
            on_window("start")
        w = self._wrk(shape, concurrency, duration)
        if on_window:
            on_window("end")
        window = w["duration_us"] / 1e6
        errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
        ok = w["requests"] - w["status"]
        return {
            "driver": self.name,
            "concurrency": concurrency,
            "window_s": round(window, 3),
            "requests": ok,
            "errors": errors,
            "error_samples": {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]},
            "rps": round(ok / window, 1) if window > 0 else 0.0,
            "loadgen_cpu_share": round(w["cpu_s"] / window, 3) if window > 0 else None,
            "latency": {
                "n": w["requests"], "p50_us": float(w["p50"]), "p90_us": float(w["p90"]), "p99_us": float(w["p99"]),
                "p999_us": float(w["p999"]), "max_us": float(w["max"]), "mean_us": round(w["mean"], 1),
            },
        }
