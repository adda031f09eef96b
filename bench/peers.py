"""Baselines from outside: nginx (one C hop), the LiteLLM proxy and the Portkey gateway.

Each is optional: ``start`` raises ``Unavailable`` with the reason (not installed, failed to
start) and the run goes on without it. ``python -m bench setup`` installs them into
bench-local places (``bench/.venv-litellm``, ``bench/.portkey``). Every one listens on
127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bench.canned_upstream import PREFIX as CANNED_PREFIX
from bench.canned_upstream import nginx_exe
from bench.drivers import Shape
from bench.procs import free_port, wait_http
from bench.systems import Env, RelayProxy, System, Unavailable, MODES

BENCH_DIR = Path(__file__).resolve().parent
LITELLM_BIN = Path(os.environ.get("BENCH_LITELLM", BENCH_DIR / ".venv-litellm" / "bin" / "litellm"))
PORTKEY_DIR = Path(os.environ.get("BENCH_PORTKEY_DIR", BENCH_DIR / ".portkey"))
PORTKEY_SERVER = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"

_NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream fake {{ server 127.0.0.1:{upstream}; keepalive 256; }}
    upstream canned {{ server 127.0.0.1:{canned}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        location / {{ proxy_pass http://fake; }}
        location {canned_prefix}/ {{ proxy_pass http://canned; }}
    }}
}}
"""


class Nginx(RelayProxy):
    """nginx as a reverse proxy, one worker, keep-alive upstream pool, no buffering, no logs."""

    def __init__(self) -> None:
        super().__init__("nginx")

    def start(self, env: Env) -> None:
        exe = nginx_exe()
        if exe is None:
            raise Unavailable("nginx not installed (apt-get install -y nginx, or python -m bench setup nginx)")
        self.port = free_port()
        d = env.workdir / "nginx"
        d.mkdir(exist_ok=True)
        conf = d / "nginx.conf"
        canned = env.canned_port if env.canned is not None else env.upstream_port
        conf.write_text(_NGINX_CONF.format(dir=d, upstream=env.upstream_port, canned=canned, canned_prefix=CANNED_PREFIX,
                                           port=self.port))
        # -e: the error log before the config is read (else it opens /var/log/nginx/error.log).
        self.child = env.sup.start("nginx", [exe, "-e", str(d / "nginx-error.log"), "-p", str(d), "-c", str(conf)],
                                   cores=env.layout.sut)
        try:
            wait_http(f"http://127.0.0.1:{self.port}/healthz", self.child, 20)
        except RuntimeError as exc:
            raise Unavailable(f"nginx did not start: {exc}") from None


_LITELLM_CONF = """
model_list:
{models}
litellm_settings:
  turn_off_message_logging: true
  set_verbose: false
  drop_params: true
  telemetry: false
general_settings:
  dangerously_permit_weak_or_unset_master_key: true
  disable_spend_logs: true
  disable_error_logs: true
"""


# uvicorn's access log (one line per request) off; warnings and errors only.
_LITELLM_LOGGING = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING"},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


class LiteLLM(System):
    """The LiteLLM proxy, one worker, logging off, each mode a model pointing at the fake upstream."""

    def __init__(self) -> None:
        super().__init__("litellm")

    def start(self, env: Env) -> None:
        if not LITELLM_BIN.exists():
            raise Unavailable(f"{LITELLM_BIN} missing (python -m bench setup litellm)")
        self.port = free_port()
        models = "\n".join(
            f"  - model_name: bench-{mode}\n    litellm_params:\n      model: openai/bench\n"
            f"      api_base: {env.base(mode)}/v1\n      api_key: sk-bench"
            for mode in MODES
        )
        conf = env.workdir / "litellm.yaml"
        conf.write_text(_LITELLM_CONF.format(models=models))
        log_conf = env.workdir / "litellm-logging.json"
        log_conf.write_text(json.dumps(_LITELLM_LOGGING))
        self.child = env.sup.start(
            "litellm",
            [str(LITELLM_BIN), "--config", str(conf), "--host", "127.0.0.1", "--port", str(self.port), "--num_workers", "1",
             "--log_config", str(log_conf)],
            cores=env.layout.sut, cwd=env.workdir,
            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                 "DISABLE_ADMIN_UI": "True", "LITELLM_MODE": "PRODUCTION", "NO_DOCS": "True"},
        )
        try:
            wait_http(f"http://127.0.0.1:{self.port}/health/liveliness", self.child, 180, expect=(200,))
        except RuntimeError as exc:
            raise Unavailable(f"litellm did not start: {exc}") from None

    def shape(self, target: str, mode: str, stream: bool = False) -> Shape | None:
        if target != "passthrough" or (mode == "canned" and stream):
            return None
        return self._chat(f"http://127.0.0.1:{self.port}", f"bench-{mode}", stream, {"authorization": "Bearer sk-bench"})


# @hono/node-server's serve() listens on every interface when no hostname is given, and the
# Portkey start script gives none: bind anything listening on a bare port to 127.0.0.1.
_BIND_LOCAL = """
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && (args.length === 1 || typeof args[1] !== "string")) {
    args.splice(1, 0, "127.0.0.1");
  } else if (args[0] && typeof args[0] === "object" && !args[0].host && args[0].port !== undefined) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
"""


class Portkey(System):
    """The Portkey gateway (node), pointed at the fake upstream with x-portkey-custom-host."""

    def __init__(self) -> None:
        super().__init__("portkey")
        self._env: Env | None = None

    def start(self, env: Env) -> None:
        node = shutil.which("node")
        if node is None:
            raise Unavailable("node not installed")
        if not PORTKEY_SERVER.exists():
            raise Unavailable(f"{PORTKEY_SERVER} missing (python -m bench setup portkey)")
        self.port = free_port()
        self._env = env
        preload = env.workdir / "bind-local.cjs"
        preload.write_text(_BIND_LOCAL)
        self.child = env.sup.start(
            "portkey", [node, "--require", str(preload), str(PORTKEY_SERVER), f"--port={self.port}", "--headless"],
            cores=env.layout.sut, cwd=PORTKEY_DIR, env={"NODE_ENV": "production"},
        )
        try:
            wait_http(f"http://127.0.0.1:{self.port}/", self.child, 60)
        except RuntimeError as exc:
            raise Unavailable(f"portkey did not start: {exc}") from None

    def shape(self, target: str, mode: str, stream: bool = False) -> Shape | None:
        if target != "passthrough" or self._env is None or (mode == "canned" and stream):
            return None
        headers = {
            "authorization": "Bearer sk-bench",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": f"{self._env.base(mode)}/v1",
        }
        return self._chat(f"http://127.0.0.1:{self.port}", "bench", stream, headers)


PEERS = {"nginx": Nginx, "litellm": LiteLLM, "portkey": Portkey}
