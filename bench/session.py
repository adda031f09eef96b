"""One bench run: the fake upstream, the systems (started on first use), the load drivers,
and ``measure``, which runs one load step against one system and adds its CPU figures.

Everything started here is stopped by ``close`` (also on errors and Ctrl-C).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import canned_upstream
from bench.capture import RelayCapture
from bench.drivers import AsyncClientDriver, WrkDriver
from bench.layout import Layout, plan
from bench.peers import PEERS
from bench.procs import Supervisor, free_port, wait_http
from bench.stats import summary_us
from bench.systems import AiohttpProxy, Direct, Env, Gateway, System, Unavailable

BASELINES = ("direct", "aiohttp-proxy", "nginx", "litellm", "portkey")
QUICK_BASELINES = ("direct", "aiohttp-proxy", "nginx")


@dataclass
class Options:
    quick: bool = False
    baselines: tuple[str, ...] = BASELINES
    driver: str = "auto"  # auto (= raw) | raw | aiohttp | wrk
    upstream: str = "auto"  # zero-delay replies from: auto (nginx when installed) | nginx | aiohttp
    soak_seconds: float = 600.0
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/test"
    keep_workdir: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Session:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.t0 = time.monotonic()
        self.layout: Layout = plan()
        self.workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
        self.sup = Supervisor(self.workdir)
        self.systems: dict[str, System] = {}
        self.unavailable: dict[str, str] = {}
        self.env: Env | None = None
        self.client = AsyncClientDriver(self.sup, self.layout.load)
        self.wrk = WrkDriver(self.sup, self.layout.load, self.workdir) if WrkDriver.available() else None
        if options.driver == "wrk" and self.wrk is None:
            raise SystemExit("--driver wrk: wrk is not installed (apt-get install -y wrk)")
        # The orchestrator mostly waits; keep it off the system under test's core.
        os.sched_setaffinity(0, self.layout.load)

    # ---- lifecycle ----------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {message}", flush=True)

    def start_upstream(self) -> Env:
        if self.env is None:
            port = free_port()
            child = self.sup.start("upstream", [sys.executable, "-m", "bench.upstream", "--port", str(port)],
                                   cores=self.layout.upstream)
            wait_http(f"http://127.0.0.1:{port}/healthz", child, 30)
            self.env = Env(self.sup, self.layout, self.workdir, child, port)
            self.log(f"fake upstream on 127.0.0.1:{port} (cores {list(self.layout.upstream)})")
            if self.options.upstream != "aiohttp":
                canned = canned_upstream.start(self.sup, self.layout.upstream, self.workdir)
                if canned is None and self.options.upstream == "nginx":
                    raise SystemExit("--upstream nginx: nginx is not installed (python -m bench setup nginx)")
                if canned is not None:
                    self.env.canned, self.env.canned_port = canned
                    self.log(f"canned upstream (nginx) on 127.0.0.1:{self.env.canned_port} for zero-delay replies")
        return self.env

    @property
    def fast_mode(self) -> str:
        """The mode for non-streamed zero-delay load: nginx's canned replies when it runs,
        else the aiohttp upstream's."""
        return "canned" if self.start_upstream().canned is not None else "zero"

    def _make(self, name: str) -> System:
        if name == "gateway":
            return Gateway()
        if name == "gateway-w2":
            return Gateway(workers=2)
        if name in ("gateway-before", "gateway-after"):
            side = name.removeprefix("gateway-")
            tree = self.options.extra.get(side)
            if not tree:
                raise Unavailable(f"no --{side} tree given")
            return Gateway(tree=Path(tree).resolve(), name=name)
        if name == "direct":
            return Direct()
        if name == "aiohttp-proxy":
            return AiohttpProxy()
        if name in PEERS:
            return PEERS[name]()
        raise ValueError(f"unknown system {name!r}")

    def system(self, name: str) -> System | None:
        """The started system, starting it on first use; None (reason in ``unavailable``) if it cannot run."""
        if name in self.systems:
            return self.systems[name]
        if name in self.unavailable:
            return None
        env = self.start_upstream()
        try:
            system = self._make(name)
        except Unavailable as exc:
            self.unavailable[name] = str(exc)
            self.log(f"{name} skipped: {exc}")
            return None
        self.log(f"starting {name} ...")
        try:
            system.start(env)
        except Unavailable as exc:
            self.unavailable[name] = str(exc).splitlines()[0]
            self.log(f"{name} skipped: {self.unavailable[name]}")
            if system.child is not None:
                self.sup.stop(system.child)
            return None
        self.systems[name] = system
        where = f"127.0.0.1:{system.port}" if system.port else ""
        self.log(f"{name} ready {where}".rstrip())
        for note in system.notes:
            self.log(f"  note: {note}")
        if isinstance(system, Gateway):
            for target, reason in system.skipped.items():
                self.log(f"  {target} skipped: {reason}")
        return system

    def restart(self, name: str) -> System | None:
        """A fresh instance (for memory figures that must start from idle)."""
        old = self.systems.pop(name, None)
        if old is not None and old.child is not None and old.child is not (self.env.upstream if self.env else None):
            self.sup.stop(old.child)
        return self.system(name)

    def stop(self, name: str) -> None:
        old = self.systems.pop(name, None)
        if old is not None and old.child is not None and old.name != "direct":
            self.sup.stop(old.child)

    def baselines(self) -> list[System]:
        return [s for name in self.options.baselines if (s := self.system(name)) is not None]

    def close(self) -> None:
        self.sup.stop_all()
        if self.options.keep_workdir:
            print(f"work directory kept: {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- measuring ----------------------------------------------------------------------

    def driver_for(self, stream: bool, concurrency: int, choice: str | None = None) -> tuple[AsyncClientDriver | WrkDriver, str]:
        """(driver, client): streams always use the aiohttp client; otherwise ``choice``
        (default: the run's ``--driver``; auto = the lean raw client)."""
        choice = choice or self.options.driver
        if stream:
            return self.client, "aiohttp"
        if choice == "wrk" and self.wrk is not None:
            return self.wrk, "wrk"
        if choice == "aiohttp":
            return self.client, "aiohttp"
        return self.client, "raw"

    def measure(
        self, system: System, target: str, mode: str, concurrency: int, *, warmup: float, duration: float,
        stream: bool = False, driver: str | None = None, capture: bool = False, **kw: Any,
    ) -> dict[str, Any] | None:
        """One load step; None when ``system`` has no such target. Adds the system's CPU per
        request and CPU share of the window, the upstream's CPU per request, and RSS; with
        ``capture`` (a relay, not ``direct``), its own delay per streamed chunk from a loopback
        capture (``bench/capture.py``)."""
        shape = system.shape(target, mode, stream)
        if shape is None:
            return None
        drv, client = self.driver_for(stream, concurrency, driver)
        if drv is self.client:
            kw["client"] = client
        assert self.env is not None
        upstream = self.env.upstream_of(mode)
        child = system.child_of(mode)
        marks: dict[str, tuple[float, float, float]] = {}

        def on_window(edge: str) -> None:
            marks[edge] = (time.monotonic(), child.cpu_seconds() if child else 0.0, upstream.cpu_seconds())

        drops0 = listen_drops()
        cap = None
        if capture and system.name != "direct":
            cap = RelayCapture(self.sup, self.workdir, self.layout.load, self.env.port_of(mode), system.port,
                               f"{system.name}-{target}".replace(">", ""))
        try:
            result = drv.run(shape, concurrency, warmup=warmup, duration=duration, on_window=on_window, **kw)
        finally:
            captured = cap.close() if cap is not None else None
        if captured is not None:
            result["relay_delay"] = summary_us(captured["delays_ns"])
            result["capture_dropped"] = captured["dropped"]
            result["upstream_burst"] = {"all": captured["burst_all"], "slowest_1pct": captured["burst_slowest"]}
        result.update(system=system.name, target=target, mode=mode, stream=stream)
        if "start" in marks and "end" in marks:
            (t0, c0, u0), (t1, c1, u1) = marks["start"], marks["end"]
            n = result["requests"] or 0
            result["sut_cpu_share"] = round((c1 - c0) / (t1 - t0), 3) if t1 > t0 else None
            result["cpu_us_per_req"] = round((c1 - c0) / n * 1e6, 1) if n else None
            result["upstream_cpu_us_per_req"] = round((u1 - u0) / n * 1e6, 1) if n else None
            result["upstream_cpu_share"] = round((u1 - u0) / (t1 - t0), 3) if t1 > t0 else None
        result["rss_mb"] = round(child.rss_bytes() / 2**20, 1) if child else None
        # SYNs the kernel dropped because a listen queue was full (machine-wide; only bench processes run).
        result["listen_drops"] = listen_drops() - drops0
        if child is not None and not child.alive():
            raise RuntimeError(f"{system.name} died during the run:\n{child.log_tail()}")
        return result


def listen_drops() -> int:
    """TcpExt ListenDrops so far (connections refused at a full accept queue; each costs its client a 1 s SYN retry)."""
    try:
        lines = [line.split() for line in open("/proc/net/netstat") if line.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1]))["ListenDrops"])
    except (OSError, KeyError, IndexError, ValueError):
        return 0


def label(system: System, target: str) -> str:
    return f"{system.name} {target}" if system.role == "sut" else system.name
