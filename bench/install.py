"""``python -m bench setup [WHAT...]``: install the optional load driver and baselines, bench-locally.

    wrk, nginx     apt-get install -y (root)
    litellm        a virtualenv at bench/.venv-litellm with litellm[proxy] pinned
    portkey        npm install into bench/.portkey, @hono/node-server pinned by overrides
    py-spy         pip install py-spy (for the profile scenario)
    capture        apt-get install -y tcpdump, pip install dpkt (streaming: the relay's own delay per chunk)

Every install is pinned and stays out of git (bench/.gitignore).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from bench.peers import BENCH_DIR, LITELLM_BIN, PORTKEY_DIR

# 1.102.4: the newest release whose [proxy] extra resolves against the package index here
# (later ones need a certifi newer than it carries).
LITELLM_VERSION = "1.102.4"
PORTKEY_VERSION = "1.15.2"
# Portkey's streaming answers 500 with @hono/node-server 1.14.2 and later.
HONO_NODE_SERVER = "1.14.1"
DPKT_VERSION = "1.9.8"


def _run(argv: list[str], **kw) -> bool:  # type: ignore[no-untyped-def]
    print("$ " + " ".join(argv), flush=True)
    try:
        return subprocess.run(argv, timeout=1800, **kw).returncode == 0
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"  failed: {exc}")
        return False


def apt(package: str) -> bool:
    if shutil.which(package) or (package == "nginx" and shutil.which("/usr/sbin/nginx")):
        print(f"{package}: already installed")
        return True
    # A fresh machine's package lists may be empty: update once and retry.
    return _run(["apt-get", "install", "-y", "-q", package]) or (
        _run(["apt-get", "update", "-q"]) and _run(["apt-get", "install", "-y", "-q", package]))


def litellm() -> bool:
    venv = BENCH_DIR / ".venv-litellm"
    if not (venv / "bin" / "python").exists() and not _run([sys.executable, "-m", "venv", str(venv)]):
        return False
    ok = _run([str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"])
    return ok and LITELLM_BIN.exists()


def portkey() -> bool:
    if shutil.which("npm") is None:
        print("portkey: npm not installed")
        return False
    PORTKEY_DIR.mkdir(exist_ok=True)
    (PORTKEY_DIR / "package.json").write_text(json.dumps({
        "name": "bench-portkey", "private": True,
        "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION, "@hono/node-server": HONO_NODE_SERVER},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER},
    }, indent=2) + "\n")
    return _run(["npm", "install", "--no-audit", "--no-fund"], cwd=PORTKEY_DIR)


def pyspy() -> bool:
    return _run([sys.executable, "-m", "pip", "install", "-q", "py-spy"])


def capture() -> bool:
    return apt("tcpdump") and _run([sys.executable, "-m", "pip", "install", "-q", f"dpkt=={DPKT_VERSION}"])


INSTALLERS = {"wrk": lambda: apt("wrk"), "nginx": lambda: apt("nginx"), "litellm": litellm, "portkey": portkey,
              "py-spy": pyspy, "capture": capture}


def setup(what: list[str]) -> int:
    """Install ``what`` (everything when empty); 1 if something could not be installed."""
    unknown = [name for name in what if name not in INSTALLERS]
    if unknown:
        print(f"unknown: {', '.join(unknown)}; choose from {', '.join(INSTALLERS)}")
        return 2
    failed = [name for name in (what or list(INSTALLERS)) if not INSTALLERS[name]()]
    if failed:
        print("not installed: " + ", ".join(failed))
    return 1 if failed else 0
