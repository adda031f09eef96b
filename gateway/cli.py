"""``gateway serve | check-config | usage | sql | batch | tokens``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import time
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import msgspec

from gateway.config import ConfigError, GatewayConfig, default_config, load_config
from gateway.logs import setup_logging
from gateway.server.auth import Principal, TokenStore
from gateway.usage_report import UsageQuery, parse_duration, parse_since, run_usage_report

log = logging.getLogger("gateway")


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def endpoints_table(config: GatewayConfig) -> str:
    rows = []
    for ep in config.endpoints:
        served = ", ".join(
            e.key + (f" {e.weight}%" if len(ep.served_entities) > 1 else "") for e in ep.served_entities
        )
        fallbacks = " -> ".join(e.key for e in ep.fallbacks) or "-"
        rows.append([ep.name, ep.task, served, fallbacks])
    return format_table(["ENDPOINT", "TASK", "SERVED BY", "FALLBACKS"], rows)


def _dev_token(data_dir: Path) -> str:
    """The embedded default's token, kept in the data directory so restarts keep it."""
    path = data_dir / "dev-token"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = "dev-" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def _banner(config: GatewayConfig, host: str, port: int, dev_token: str | None) -> str:
    base = f"http://{host}:{port}"
    lines = [f"gateway listening on {base}", "", endpoints_table(config), ""]
    if dev_token:
        chat = next((e.name for e in config.endpoints if e.task == "chat"), "mock-chat")
        lines += [
            f"dev token: {dev_token}",
            "",
            "try it:",
            f"  curl {base}/mlflow/v1/chat/completions -H 'Authorization: Bearer {dev_token}' \\",
            f"    -H 'content-type: application/json' -d '{{\"model\": \"{chat}\", \"messages\": [{{\"role\": \"user\", \"content\": \"hello\"}}]}}'",
            "",
            "  from openai import OpenAI",
            f"  client = OpenAI(base_url='{base}/mlflow/v1', api_key='{dev_token}')",
            f"  print(client.chat.completions.create(model='{chat}', messages=[{{'role': 'user', 'content': 'hello'}}]).choices[0].message.content)",
            "",
        ]
    return "\n".join(lines)


#: Allocations between young-generation collections (CPython's default is 700). Each of
#: hundreds of requests in flight holds a few hundred objects, so at the default most young
#: collections find them still alive and traverse them again (callgrind, governed at 128
#: connections: 660k instructions per request at 700, 627k at 5,000 and above). The older
#: generations keep their defaults.
GC_YOUNG_THRESHOLD = 10_000


def run_worker(config: GatewayConfig, dev_token: str | None, reuse_port: bool) -> None:
    """Serve until SIGINT/SIGTERM; shutdown drains the usage queue."""
    import gc

    from aiohttp import web

    from gateway.app import create_app
    from gateway.server.access_log import JSONAccessLogger

    setup_logging()
    store = TokenStore(config.tokens)
    if dev_token:
        store.add(dev_token, Principal("dev"))
    if not len(store):
        log.warning("no tokens are configured: every API request will get 401")
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    app = create_app(config, store)
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    web.run_app(
        # aiohttp's default listen backlog (128) drops SYNs when hundreds of clients connect at once.
        app, host=config.server.host, port=config.server.port, reuse_port=reuse_port, backlog=4096,
        print=lambda _: log.info("worker %d ready on %s:%d", os.getpid(), config.server.host, config.server.port),
        access_log_class=JSONAccessLogger, loop=loop,
        access_log=logging.getLogger("gateway.access") if config.server.access_log else None,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir or ".gateway")
    try:
        config = load_config(args.config) if args.config else default_config(str(data_dir))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    server = msgspec.structs.replace(
        config.server,
        host=args.host or config.server.host,
        port=args.port if args.port is not None else config.server.port,
        data_dir=args.data_dir or config.server.data_dir,
    )
    config = msgspec.structs.replace(config, server=server)
    dev_token = None if args.config else _dev_token(Path(server.data_dir))
    print(_banner(config, server.host, server.port, dev_token), flush=True)
    if args.workers <= 1:
        run_worker(config, dev_token, reuse_port=False)
        return 0
    # Each worker binds the same port (SO_REUSEPORT) and the kernel spreads connections.
    metrics_dir = Path(server.data_dir) / f"metrics-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(config, dev_token, True), name=f"worker-{i}") for i in range(args.workers)]
    for p in procs:
        p.start()

    def stop_workers(signum: int, frame: object) -> None:
        # A signal to the parent alone (a service manager's SIGTERM) must stop every worker;
        # each drains its usage queue on SIGTERM.
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop_workers)
    signal.signal(signal.SIGTERM, stop_workers)
    try:
        for p in procs:
            p.join()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return max((p.exitcode or 0) for p in procs)


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(endpoints_table(config))
    print(f"\n{len(config.endpoints)} endpoints, {len(config.providers)} providers, {len(config.tokens)} tokens: OK")
    return 0


def _store_config(args: argparse.Namespace) -> GatewayConfig:
    """The configuration naming the store: --config, else the embedded default under --data-dir."""
    data_dir = args.data_dir or ".gateway"
    config = load_config(args.config) if args.config else default_config(data_dir, env={})
    if args.data_dir:
        config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, data_dir=data_dir))
    return config


def cmd_usage(args: argparse.Namespace) -> int:
    try:
        config = _store_config(args)
        since = parse_since(args.since)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        headers, rows = asyncio.run(run_usage_report(config, UsageQuery(since, args.by)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(headers, rows))
    return 0


def _read_sql(args: argparse.Namespace) -> str:
    if (args.query is None) == (args.file is None):
        raise ValueError("give the query as an argument or with --file, not both")
    return args.query if args.file is None else (sys.stdin.read() if args.file == "-" else Path(args.file).read_text())


def _store_and_query(args: argparse.Namespace) -> tuple[GatewayConfig, str] | None:
    """The store's configuration and the query; None, after saying why, when either is bad."""
    try:
        return _store_config(args), _read_sql(args)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_sql(args: argparse.Namespace) -> int:
    """One read-only query over the store's usage and inference tables."""
    from gateway.store_query import StoreQueryError, query_store
    from gateway.tabular_output import write_rows

    if (given := _store_and_query(args)) is None:
        return 2
    config, query = given
    try:
        result = asyncio.run(query_store(config, query, timeout_s=args.timeout))
    except (StoreQueryError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_rows(result.columns, result.rows, args.format, sys.stdout)
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from gateway.batch.command import run_batch_command

    if (given := _store_and_query(args)) is None:
        return 2
    return run_batch_command(args, *given)


T = TypeVar("T")


async def _closing(table, work: Awaitable[T]) -> T:  # type: ignore[no-untyped-def]
    """``work``'s result, with the table's store connection closed after it."""
    try:
        return await work
    finally:
        await table.close()


def cmd_tokens(args: argparse.Namespace) -> int:
    from datetime import datetime

    from gateway.tokens_table import TokensTable

    try:
        table = TokensTable(_store_config(args))
        if args.action == "create":
            expires = parse_duration(args.expires_in) if args.expires_in else None
            kind = "service_principal" if args.service_principal else "user"
            secret, row = asyncio.run(_closing(table, table.create(
                args.principal, tuple(args.group), kind=kind, admin=args.admin, expires_in=expires,
                description=args.description)))
            print(f"token {row.id} for {kind.replace('_', ' ')} {row.principal} (shown once, store it now):\n{secret}")
            return 0
        if args.action == "revoke":
            if asyncio.run(_closing(table, table.revoke(args.id))):
                print(f"revoked {args.id}; running gateways stop accepting it within seconds")
                return 0
            print(f"error: no unrevoked token with id {args.id}", file=sys.stderr)
            return 1
        rows = asyncio.run(_closing(table, table.list()))
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def when(ts: float | None) -> str:
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"

    now = time.time()
    print(format_table(
        ["ID", "PRINCIPAL", "KIND", "GROUPS", "ADMIN", "CREATED", "EXPIRES", "STATE", "DESCRIPTION"],
        [[t.id, t.principal, t.kind, ",".join(t.groups) or "-", "yes" if t.admin else "no", when(t.created_at),
          when(t.expires_at), "revoked" if t.revoked_at else "active" if t.active(now) else "expired",
          t.description or "-"] for t in rows],
    ))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="A self-hosted AI gateway.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (embedded default without --config)")
    serve.add_argument("--config", help="YAML or TOML configuration file")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    serve.add_argument("--data-dir", help="where SQLite usage data and the dev token live (default .gateway)")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="validate a configuration file and list its endpoints")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    usage = sub.add_parser("usage", help="summarise the usage table")
    usage.add_argument("--config")
    usage.add_argument("--data-dir")
    usage.add_argument("--since", default="24h", help="e.g. 30m, 1h, 7d (default 24h)")
    usage.add_argument("--by", default="endpoint", help="endpoint, requester, provider, status or tag:KEY")
    usage.set_defaults(func=cmd_usage)

    sql = sub.add_parser("sql", help="a read-only SQL query over the usage and inference tables")
    sql.add_argument("query", nargs="?", help="the query (or --file)")
    sql.add_argument("-f", "--file", help="read the query from this file ('-': standard input)")
    sql.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")
    sql.add_argument("--timeout", type=float, default=30.0, help="seconds before the query is cancelled (default 30)")
    sql.add_argument("--config")
    sql.add_argument("--data-dir")
    sql.set_defaults(func=cmd_sql)

    from gateway.batch.command import add_arguments as add_batch_arguments

    batch = sub.add_parser("batch", help="run SQL in DuckDB with ai_query(endpoint, request) over your files")
    add_batch_arguments(batch)
    batch.set_defaults(func=cmd_batch)

    tokens = sub.add_parser("tokens", help="create, list or revoke run-time tokens (stored hashed)")
    tokens_sub = tokens.add_subparsers(dest="action", required=True)
    create = tokens_sub.add_parser("create", help="create a token; it is shown once")
    create.add_argument("--principal", required=True, help="the user or service principal it belongs to")
    create.add_argument("--group", action="append", default=[], help="a group of the principal (repeatable)")
    create.add_argument("--service-principal", action="store_true",
                        help="the principal is a service principal (an application), not a user")
    create.add_argument("--admin", action="store_true", help="may query every endpoint")
    create.add_argument("--expires-in", help="e.g. 12h, 30d (default: never)")
    create.add_argument("--description", default="")
    tokens_sub.add_parser("list", help="list tokens (never their secrets)")
    revoke = tokens_sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    for p in (tokens, create, revoke, tokens_sub.choices["list"]):
        p.add_argument("--config", default=argparse.SUPPRESS)
        p.add_argument("--data-dir", default=argparse.SUPPRESS)
    tokens.set_defaults(func=cmd_tokens, config=None, data_dir=None)

    args = parser.parse_args(argv)
    return args.func(args)
