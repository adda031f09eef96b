"""``gateway batch``: arguments, the run, and where the result goes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.tabular_output import FORMATS, write_rows

DEFAULT_URL = "http://127.0.0.1:8080"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="the SQL to run, one or more statements (or --file)")
    parser.add_argument("-f", "--file", help="read the SQL from this file ('-': standard input)")
    parser.add_argument("--url", help=f"the gateway ai_query calls go through (default $GATEWAY_URL or {DEFAULT_URL})")
    parser.add_argument("--token", help="its token (default $GATEWAY_TOKEN, else the embedded default's dev token)")
    parser.add_argument("--concurrency", type=int, default=8, help="ai_query requests in flight at once (default 8)")
    parser.add_argument("--retries", type=int, default=5, help="retries of a row on 429, 5xx and connection errors")
    parser.add_argument("--max-retry-wait", type=float, default=60.0,
                        help="longest Retry-After (seconds) to wait out; longer fails the row (default 60)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request attempt (default 300)")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                        help="a request tag on every ai_query call (repeatable)")
    parser.add_argument("--table", action="append", default=[], metavar="NAME=FILE",
                        help="a CSV, Parquet or JSON file as a table named NAME (repeatable)")
    parser.add_argument("--output", "-o", help="write the result to a .parquet, .csv or .jsonl file")
    parser.add_argument("--format", choices=FORMATS, default="table", help="standard output format (default table)")
    parser.add_argument("--since", default="7d",
                        help="rows of the usage and inference tables to load: 30m, 1h, 7d or all (default 7d)")
    parser.add_argument("--config", help="configuration file naming the store (for the usage and inference tables)")
    parser.add_argument("--data-dir", help="the embedded default's data directory (default .gateway)")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {value!r}: write it as NAME=VALUE")
        pairs[key] = rest
    return pairs


def _token(args: argparse.Namespace, config: GatewayConfig) -> str | None:
    if args.token or os.environ.get("GATEWAY_TOKEN"):
        return args.token or os.environ["GATEWAY_TOKEN"]
    dev = Path(config.server.data_dir) / "dev-token"  # what `gateway serve` without --config made
    return dev.read_text().strip() if not args.config and dev.exists() else None


def run_batch_command(args: argparse.Namespace, config: GatewayConfig, sql: str) -> int:
    """Run the batch ``sql``; 0 on success, 1 when it failed, 2 for bad arguments."""
    from gateway.batch import import_duckdb
    from gateway.batch.client import ClientOptions
    from gateway.batch.session import BatchError, BatchOptions, BatchSession, write_file
    from gateway.usage_report import parse_since

    try:
        import_duckdb()
        if args.concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        tags, tables = _pairs(args.tag, "--tag"), _pairs(args.table, "--table")
        since = 0.0 if args.since == "all" else parse_since(args.since)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = _token(args, config)
    client = None if token is None else ClientOptions(
        url=args.url or os.environ.get("GATEWAY_URL") or DEFAULT_URL, token=token, concurrency=args.concurrency,
        retries=args.retries, max_retry_wait_s=args.max_retry_wait, timeout_s=args.timeout, tags=tags)
    try:
        session = BatchSession(BatchOptions(client=client, tables=tables, store=config, since=since))
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        result = session.run(sql)
        if result is not None and args.output:
            write_file(session, result, args.output)
        elif result is not None:
            columns = [result.column(i).to_pylist() for i in range(result.num_columns)]
            write_rows(result.column_names, list(zip(*columns)), args.format, sys.stdout)
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if (summary := session.summary()) is not None:
            print(summary, file=sys.stderr)
        session.close()
    if args.output and result is not None:
        print(f"wrote {result.num_rows} rows to {args.output}", file=sys.stderr)
    return 0
