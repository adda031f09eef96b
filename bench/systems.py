"""The systems a bench run compares: the gateway (the system under test) and the baselines.

A system is started once per run (``start``), and answers ``shape(target, mode, stream)``:
the request that exercises ``target`` through it, or None when it cannot (baselines only
relay Chat Completions, so they only have the ``passthrough`` target). ``child`` is the
process whose CPU time and memory count for the system.

Modes are the fake upstream's: ``zero`` (no delay), ``d20`` (20 ms), ``s64x20`` (64 deltas
paced 20 ms apart); each mode is a path prefix on the upstream. ``canned`` is the zero-delay
mode answered by nginx from canned bodies (``canned_upstream.py``), when nginx is installed.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.bodies import chat_request, gemini_request, messages_request
from bench.drivers import Shape
from bench.layout import Layout
from bench.procs import Child, Supervisor, free_port, wait_http

TOKEN = "bench-token"
TARGETS = ("passthrough", "governed", "chat->anthropic", "messages->openai", "gemini->openai")
TRANSLATED = TARGETS[2:]
MODES = ("zero", "canned", "d20", "s64x20")
STREAM_DELTAS = {"s64x20": 64}
TAGS = json.dumps({"team": "bench", "project": "harness"})


class Unavailable(Exception):
    """A system that cannot run here; the message says why."""


def mode_prefix(mode: str) -> str:
    return "" if mode == "zero" else "/" + mode


@dataclass
class Env:
    sup: Supervisor
    layout: Layout
    workdir: Path
    upstream: Child
    upstream_port: int
    canned: Child | None = None  # nginx with canned bodies, for the canned mode
    canned_port: int = 0

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}"

    @property
    def canned_url(self) -> str:
        """Where the canned mode is served; without nginx, the aiohttp upstream answers its
        paths with zero delay (it reads only a path's end)."""
        return f"http://127.0.0.1:{self.canned_port}" if self.canned is not None else self.upstream_url

    def base(self, mode: str) -> str:
        """The upstream URL of ``mode``, its path prefix included."""
        return (self.canned_url if mode == "canned" else self.upstream_url) + mode_prefix(mode)

    def upstream_of(self, mode: str) -> Child:
        """The process answering ``mode``, whose CPU time is the upstream's."""
        return self.canned if mode == "canned" and self.canned is not None else self.upstream

    def port_of(self, mode: str) -> int:
        """The port answering ``mode``."""
        return self.canned_port if mode == "canned" and self.canned is not None else self.upstream_port


@dataclass
class System:
    name: str
    role: str = "baseline"  # or "sut"
    child: Child | None = None
    port: int = 0
    notes: list[str] = field(default_factory=list)
    #: A command the system's process runs under (valgrind, for the instructions scenario).
    wrap: tuple[str, ...] = ()

    def start(self, env: Env) -> None:
        raise NotImplementedError

    def child_of(self, mode: str) -> Child | None:
        """The process whose CPU time and memory count for this system in ``mode``."""
        return self.child

    def shape(self, target: str, mode: str, stream: bool = False) -> Shape | None:
        raise NotImplementedError

    def _chat(self, base: str, model: str, stream: bool, headers: dict[str, str] | None = None) -> Shape:
        return Shape(f"{base}/v1/chat/completions", chat_request(model, stream),
                     {"content-type": "application/json", **(headers or {})}, stream)


class Direct(System):
    """Straight to the fake upstream: the floor. Its CPU figures are the upstream's own."""

    def __init__(self) -> None:
        super().__init__("direct")
        self.env: Env | None = None

    def start(self, env: Env) -> None:
        self.child, self.port, self.env = env.upstream, env.upstream_port, env

    def child_of(self, mode: str) -> Child | None:
        return self.env.upstream_of(mode) if self.env is not None else self.child

    def shape(self, target: str, mode: str, stream: bool = False) -> Shape | None:
        if target != "passthrough" or self.env is None or (mode == "canned" and stream):
            return None
        return self._chat(self.env.base(mode), "bench", stream)


class RelayProxy(System):
    """A proxy that relays the path as it is (the aiohttp floor, nginx); paths under the
    canned prefix go to the canned upstream."""

    def shape(self, target: str, mode: str, stream: bool = False) -> Shape | None:
        if target != "passthrough" or (mode == "canned" and stream):
            return None
        return self._chat(f"http://127.0.0.1:{self.port}{mode_prefix(mode)}", "bench", stream)


class AiohttpProxy(RelayProxy):
    """``bench/baseline_proxy.py``: the floor for an aiohttp + uvloop design."""

    def __init__(self) -> None:
        super().__init__("aiohttp-proxy")

    def start(self, env: Env) -> None:
        self.port = free_port()
        self.child = env.sup.start(
            "aiohttp-proxy",
            [*self.wrap, sys.executable, "-m", "bench.baseline_proxy", "--port", str(self.port), "--upstream", env.upstream_url,
             "--route", f"{mode_prefix('canned')}={env.canned_url}"],
            cores=env.layout.sut,
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.child, 30)


class Gateway(System):
    """``gateway serve`` with a bench config: one endpoint family per upstream mode.

    ``pass-<mode>``: Chat Completions to an openai_compatible provider (passthrough);
    ``gov-<mode>``: the same, governed (request tags; rate limits when the gateway has them);
    ``anth-<mode>``: an Anthropic provider (Chat Completions callers are translated).
    Anthropic Messages and Gemini callers reach ``pass-<mode>`` translated.
    """

    def __init__(self, workers: int = 1, storage: str = "sqlite", postgres_dsn: str = "",
                 tree: Path | None = None, name: str = "") -> None:
        """``tree``: run the gateway package of another checkout (a worktree of an older
        commit, for before/after rounds) instead of this one's."""
        super().__init__(name or ("gateway" if workers == 1 else f"gateway-w{workers}"), role="sut")
        self.workers = workers
        self.tree = tree
        self.storage = storage
        self.postgres_dsn = postgres_dsn
        self.skipped: dict[str, str] = {}

    def config(self, env: Env, data_dir: Path) -> dict[str, object]:
        providers: dict[str, object] = {}
        endpoints: list[dict[str, object]] = []
        limits = _limit_rules()
        for mode in MODES:
            base = env.base(mode)
            providers[f"oa-{mode}"] = {"kind": "openai_compatible", "base_url": base + "/v1", "api_key": "sk-bench"}
            providers[f"an-{mode}"] = {"kind": "anthropic", "base_url": base, "api_key": "sk-bench"}
            endpoints.append({"name": f"pass-{mode}", "served_entities": [{"provider": f"oa-{mode}", "model": "bench"}]})
            gov: dict[str, object] = {"name": f"gov-{mode}", "served_entities": [{"provider": f"oa-{mode}", "model": "bench"}]}
            if limits:
                gov["rate_limits"] = limits
            endpoints.append(gov)
            endpoints.append({"name": f"anth-{mode}", "served_entities": [{"provider": f"an-{mode}", "model": "bench"}]})
        storage: dict[str, object] = {"kind": "sqlite", "path": str(data_dir / "usage.db")}
        if self.storage == "postgres":
            storage = {"kind": "postgres", "dsn": self.postgres_dsn}
        return {
            "server": {"host": "127.0.0.1", "port": self.port, "data_dir": str(data_dir)},
            "providers": providers,
            "endpoints": endpoints,
            "tokens": [{"principal": "bench", "token": TOKEN}],
            "storage": storage,
        }

    def start(self, env: Env) -> None:
        self.port = free_port()
        data_dir = env.workdir / f"{self.name}-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        cfg = env.workdir / f"{self.name}.json"  # JSON is YAML
        cfg.write_text(json.dumps(self.config(env, data_dir), indent=2))
        if not _limit_rules():
            self.notes.append("governed = auth + usage records + metrics + request tags (rate limits not in this gateway yet)")
        cores = env.layout.sut if self.workers == 1 else env.layout.sut_wide
        self.child = env.sup.start(
            self.name,
            [*self.wrap, sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(self.port),
             "--workers", str(self.workers)],
            cores=cores, cwd=env.workdir, env={"PYTHONPATH": str(self.tree)} if self.tree else None,
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.child, 60, expect=(200,))
        for target in TRANSLATED:
            reason = self.probe(target)
            if reason:
                self.skipped[target] = reason

    def probe(self, target: str) -> str | None:
        """None if ``target`` answers 200; else why it is skipped."""
        shape = self.shape(target, "zero", stream=False, probing=True)
        assert shape is not None
        req = urllib.request.Request(shape.url, data=shape.body, headers=shape.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
                return None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return f"{shape.url.split('/', 3)[3]} answers 404: this gateway has no such client API yet"
            return f"probe got HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')}"
        except OSError as exc:
            return f"probe failed: {exc}"

    def shape(self, target: str, mode: str, stream: bool = False, probing: bool = False) -> Shape | None:
        if (target in self.skipped and not probing) or (mode == "canned" and stream):
            return None
        base = f"http://127.0.0.1:{self.port}"
        auth = {"authorization": f"Bearer {TOKEN}"}
        if target == "passthrough":
            return self._chat(base, f"pass-{mode}", stream, auth)
        if target == "governed":
            return self._chat(base, f"gov-{mode}", stream, {**auth, "Databricks-Ai-Gateway-Request-Tags": TAGS})
        if target == "chat->anthropic":
            return self._chat(base, f"anth-{mode}", stream, auth)
        if target == "messages->openai":
            return Shape(f"{base}/anthropic/v1/messages", messages_request(f"pass-{mode}", stream),
                         {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": TOKEN}, stream)
        if target == "gemini->openai":
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
            return Shape(f"{base}/gemini/v1beta/models/pass-{mode}:{method}", gemini_request(),
                         {"content-type": "application/json", "x-goog-api-key": TOKEN}, stream)
        raise ValueError(target)


def _limit_rules() -> list[dict[str, object]]:
    """Generous rules (never hit) when this gateway's endpoints take ``rate_limits``."""
    try:
        from gateway.config import EndpointConfig
    except ImportError:
        return []
    if "rate_limits" not in EndpointConfig.__struct_fields__:
        return []
    return [{"key": "endpoint", "qpm": 1_000_000_000, "tpm": 1_000_000_000_000},
            {"key": "user", "qpm": 1_000_000_000, "tpm": 1_000_000_000_000}]
