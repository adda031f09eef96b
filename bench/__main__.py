"""``python -m bench run [SCENARIO...]``, ``python -m bench setup [WHAT...]``, ``python -m bench list``,
``python -m bench pool RESULTS.json:SYSTEM...``."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time

from bench.session import BASELINES, QUICK_BASELINES, Options, Session


def _parser() -> argparse.ArgumentParser:
    from bench.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(prog="python -m bench", description="Gateway benchmarks; see bench/README.md.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios (default: the seven of issue 4; not profile, ab, instructions, syscalls)")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of: {', '.join(SCENARIOS)}")
    run.add_argument("--quick", action="store_true", help="short windows and fewer lines: a smoke run")
    run.add_argument("--baselines", help=f"comma-separated, from {','.join(BASELINES)} "
                     f"(default: all; with --quick: {','.join(QUICK_BASELINES)})")
    run.add_argument("--driver", choices=("auto", "raw", "aiohttp", "wrk"), default="auto",
                     help="load driver for non-streamed load (auto: raw, the lean protocol client; "
                     "streams always use the aiohttp client, and latency at concurrency 1 too)")
    run.add_argument("--upstream", choices=("auto", "nginx", "aiohttp"), default="auto",
                     help="who answers non-streamed zero-delay requests (auto: nginx with canned bodies when "
                     "installed, for a near-free upstream; else the aiohttp fake upstream)")
    run.add_argument("--soak-seconds", type=float, default=600.0, help="memory soak length (default 600: ten minutes)")
    run.add_argument("--postgres-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    run.add_argument("--stream-workers2", action="store_true", help="streaming capacity also on --workers 2")
    run.add_argument("--profile-target", default="passthrough", help="profile: which gateway target to load")
    run.add_argument("--profile-seconds", type=float, default=20.0)
    run.add_argument("--keep-workdir", action="store_true", help="keep configs and process logs")
    run.add_argument("--before", metavar="TREE", help="a checkout of the commit to compare against "
                     "(git worktree add /tmp/before HEAD~1): ab, instructions and syscalls run it side by side; "
                     "latency, throughput, sustained and streaming add its gateway's lines to their interleaved rounds")
    run.add_argument("--after", metavar="TREE", help="ab: a checkout to use as the after side (default: this one)")
    run.add_argument("--ab-rounds", type=int, default=5, help="ab: interleaved rounds (default 5)")
    run.add_argument("--ab-target", default="passthrough",
                     help="ab: the gateway target both sides run (passthrough, governed, chat->anthropic, ...)")
    run.add_argument("--name", "--ab-name", dest="ab_name", default="",
                     help="names the results files (<date>-<scenario>-<name>), so a rerun on the same day keeps the run before")
    run.add_argument("--instr-requests", type=int, default=0,
                     help="instructions, syscalls: requests counted per line (default 1000; 300 with --quick)")
    run.add_argument("--instr-concurrency", type=int, default=0,
                     help="instructions: requests in flight (default 8; 4 with --instr-stream)")
    run.add_argument("--instr-stream", action="store_true",
                     help="instructions: count paced streams (per delta) instead of non-streamed requests")
    setup = sub.add_parser("setup", help="install wrk, nginx, litellm, portkey, py-spy, capture (bench-locally)")
    # No choices= here: argparse checks a nargs="*" default against them and refuses [].
    setup.add_argument("what", nargs="*", metavar="WHAT", help="any of: wrk, nginx, litellm, portkey, py-spy, capture (default: all)")
    sub.add_parser("list", help="list the scenarios")
    pool = sub.add_parser("pool", help="ab: medians of per-round ratios to aiohttp-proxy pooled over ab result files")
    pool.add_argument("specs", nargs="+", metavar="RESULTS.json:SYSTEM[,SYSTEM]",
                      help="an ab result file and the gateway lines to pool from it (gateway-before, gateway-after, gateway)")
    return parser


def _on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds into Session.close()


def cmd_run(args: argparse.Namespace) -> int:
    from bench.report import Report
    from bench.scenarios import DEFAULT, SCENARIOS

    names = args.scenarios or list(DEFAULT)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    baselines = tuple(args.baselines.split(",")) if args.baselines else (QUICK_BASELINES if args.quick else BASELINES)
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        print(f"unknown baseline(s): {', '.join(bad)}; choose from {', '.join(BASELINES)}", file=sys.stderr)
        return 2
    options = Options(
        quick=args.quick, baselines=baselines, driver=args.driver, upstream=args.upstream, soak_seconds=args.soak_seconds,
        postgres_dsn=args.postgres_dsn, keep_workdir=args.keep_workdir,
        extra={"stream_workers2": args.stream_workers2, "profile_target": args.profile_target,
               "profile_seconds": args.profile_seconds, "before": args.before, "after": args.after, "ab_rounds": args.ab_rounds,
               "ab_name": args.ab_name, "ab_target": args.ab_target,
               "instr_requests": args.instr_requests, "instr_concurrency": args.instr_concurrency,
               "instr_stream": args.instr_stream},
    )
    command = "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    signal.signal(signal.SIGTERM, _on_signal)
    session = Session(options)
    session.log(f"bench {' '.join(names)}{' (quick)' if args.quick else ''}; cores: {session.layout.describe()}")
    session.log(f"load driver: {args.driver if args.driver != 'auto' else 'raw'} for non-streamed load, aiohttp client for "
                f"streams and concurrency-1 latency{'; wrk cross-checks throughput' if session.wrk else ''}; "
                f"baselines: {', '.join(baselines)}")
    failed = []
    try:
        for name in names:
            report = Report(name, args.quick, session.layout.describe(), command=command)
            if args.ab_name:
                report.scenario = f"{name}-{args.ab_name}"
            t0 = time.monotonic()
            session.log(f"== {name}")
            try:
                SCENARIOS[name](session, report)
            except (RuntimeError, TimeoutError, OSError) as exc:
                session.log(f"{name} failed: {exc}")
                failed.append(name)
                report.notes.append(f"failed: {exc}")
            if session.env is not None:
                report.notes.append("non-streamed zero-delay replies from " + (
                    "nginx with canned bodies (bench/canned_upstream.py)" if session.env.canned is not None
                    else "the aiohttp fake upstream (bench/upstream.py)"))
            json_path, md_path = report.write()
            print("\n" + report.markdown(), flush=True)
            session.log(f"== {name} done in {time.monotonic() - t0:.0f} s: {md_path} and {json_path.name}")
    except KeyboardInterrupt:
        session.log("interrupted; stopping every process")
        return 130
    finally:
        session.close()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "setup":
        from bench.install import setup
        return setup(args.what)
    if args.command == "pool":
        import json

        from bench.scenarios.ab import pooled
        print(json.dumps(pooled(args.specs), indent=2))
        return 0
    if args.command == "list":
        from bench.scenarios import SCENARIOS
        for name, fn in SCENARIOS.items():
            doc = (sys.modules[fn.__module__].__doc__ or "").strip().splitlines()[0]
            print(f"{name:<14} {doc}")
        return 0
    return cmd_run(args)


if __name__ == "__main__":
    raise SystemExit(main())
