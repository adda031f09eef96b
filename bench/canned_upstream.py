"""A near-free fake upstream: nginx answering the zero-delay requests from canned bodies.

The aiohttp fake upstream (``upstream.py``) costs tens of µs of CPU per request on the core
it shares with the load generator; at the gateway's request rates that is a large part of
that core, and it caps what the harness can measure (two gateway workers most of all).
nginx's ``return`` answers a request without reading more than its head and discarding its
body, for a few µs. It serves the ``canned`` mode, non-streamed replies only:

    /canned/v1/chat/completions                     OpenAI Chat Completions
    /canned/v1/messages                             Anthropic Messages
    /canned/v1beta/models/{m}:generateContent       Gemini

Delays and paced streams need a program, so the other modes stay on the aiohttp upstream.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.bodies import CANNED
from bench.procs import Child, Supervisor, free_port, wait_http

PREFIX = "/canned"


def nginx_exe() -> str | None:
    """The nginx binary, if installed (Debian puts it in /usr/sbin, often off PATH)."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _quoted(body: bytes) -> str:
    text = body.decode()
    # nginx would read $name as a variable in a return text, and has no escape for it.
    if "$" in text:
        raise ValueError("a canned body with '$' cannot be served by nginx's return")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def nginx_conf(workdir: Path, port: int) -> str:
    """One worker, keep-alive without a request cap, no logs, the canned bodies inline."""
    answers = [
        ("= " + PREFIX + "/v1/chat/completions", CANNED["openai"]),
        ("= " + PREFIX + "/v1/messages", CANNED["anthropic"]),
        ("~ ^" + PREFIX + "/v1beta/models/[^/]+:generateContent$", CANNED["gemini"]),
    ]
    locations = "\n".join(
        f"        location {match} {{ default_type {canned.content_type}; return 200 {_quoted(canned.json)}; }}"
        for match, canned in answers
    )
    return f"""
worker_processes 1;
daemon off;
master_process on;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
{locations}
        location = /healthz {{ default_type text/plain; return 200 'ok'; }}
        location / {{ return 404; }}
    }}
}}
"""


def start(sup: Supervisor, cores: tuple[int, ...], workdir: Path) -> tuple[Child, int] | None:
    """Start the canned upstream; None when nginx is not installed."""
    exe = nginx_exe()
    if exe is None:
        return None
    port = free_port()
    d = workdir / "canned-upstream"
    d.mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(nginx_conf(d, port))
    child = sup.start("canned-upstream", [exe, "-e", str(d / "nginx-error.log"), "-p", str(d), "-c", str(conf)],
                      cores=cores)
    wait_http(f"http://127.0.0.1:{port}/healthz", child, 20, expect=(200,))
    return child, port
