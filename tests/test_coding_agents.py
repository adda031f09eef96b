"""Claude Code, Codex CLI and Gemini CLI, run headless through the gateway to a tool-using
reply, against an endpoint of each provider kind.

Each agent asks its model; the provider (the mock, or a fake upstream of that wire format)
calls one of the agent's own tools to read a file; the agent runs it and sends the result
back; the provider answers with it. The agents come from npm: `.ci/run` installs them into
$GATEWAY_AGENTS_DIR (default ~/.cache/gateway-agents); without them these tests skip,
except under CI=true.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TOKEN
from tests.upstreams import UPSTREAM_KEY

AGENTS_DIR = Path(os.environ.get("GATEWAY_AGENTS_DIR", Path.home() / ".cache" / "gateway-agents"))
BIN = AGENTS_DIR / "node_modules" / ".bin"
NOTE = "hello from a file"
KINDS = ["mock", "openai", "openai_compatible", "anthropic", "gemini"]
#: The agent's own file-reading tool, which the provider is told to call.
TOOLS = {"claude": "Read", "codex": "exec_command", "gemini": "read_file"}


def agent_binary(name: str) -> Path:
    path = BIN / name
    if not path.exists() or shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{path} is missing: .ci/run installs the coding agents from npm")
        pytest.skip(f"coding agent {name!r} not installed in {AGENTS_DIR} (npm install --prefix {AGENTS_DIR} "
                    "@anthropic-ai/claude-code @openai/codex @google/gemini-cli)")
    return path


async def gateway_for(make_gateway, start_upstream, kind: str, agent: str):  # type: ignore[no-untyped-def]
    tool = TOOLS[agent]
    if kind == "mock":
        providers, model = {"up": {"kind": "mock"}}, f"tool={tool}"
    else:
        wire = "openai" if kind == "openai_compatible" else kind
        up = await start_upstream(wire)
        provider = {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": up.url + "/v1" if wire == "openai" else up.url}
        providers, model = {"up": provider}, f"agent-{tool}"
    return await make_gateway(providers, [{"name": "agent-endpoint", "served_entities": [{"provider": "up", "model": model}]}])


async def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=cwd, env={"PATH": os.environ["PATH"], **env},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"{cmd[0]} did not finish")
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


def workspace(tmp_path: Path) -> tuple[Path, Path, Path]:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    note = work / "note.txt"
    note.write_text(NOTE + "\n")
    return work, home, note


async def assert_round_trip(gw, out: str) -> None:  # type: ignore[no-untyped-def]
    assert NOTE in out, out[-3000:]
    rows = [r for r in await gw.usage_rows(2) if r["endpoint"] == "agent-endpoint"]
    assert len(rows) >= 2 and all(r["status_code"] == 200 for r in rows), rows


@pytest.mark.parametrize("kind", KINDS)
async def test_claude_code(make_gateway, start_upstream, tmp_path, kind):
    claude = agent_binary("claude")
    gw = await gateway_for(make_gateway, start_upstream, kind, "claude")
    work, home, note = workspace(tmp_path)
    out = await run([str(claude), "-p", str(note), "--output-format", "json"], work, {
        "HOME": str(home), "ANTHROPIC_BASE_URL": gw.url("/anthropic"), "ANTHROPIC_AUTH_TOKEN": TOKEN,
        "ANTHROPIC_MODEL": "agent-endpoint", "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    })
    result = json.loads(out.strip().splitlines()[-1])
    assert result["is_error"] is False and result["num_turns"] == 2
    await assert_round_trip(gw, result["result"])


@pytest.mark.parametrize("kind", KINDS)
async def test_codex_cli(make_gateway, start_upstream, tmp_path, kind):
    codex = agent_binary("codex")
    gw = await gateway_for(make_gateway, start_upstream, kind, "codex")
    work, home, note = workspace(tmp_path)
    codex_home = home / ".codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        'model = "agent-endpoint"\nmodel_provider = "gateway"\n\n[model_providers.gateway]\nname = "gateway"\n'
        f'base_url = "{gw.url("/codex/v1")}"\nwire_api = "responses"\nenv_key = "GATEWAY_TOKEN"\n')
    out = await run([str(codex), "exec", "--skip-git-repo-check", f"cat {note}"], work, {
        "HOME": str(home), "CODEX_HOME": str(codex_home), "GATEWAY_TOKEN": TOKEN})
    await assert_round_trip(gw, out)


@pytest.mark.parametrize("kind", KINDS)
async def test_gemini_cli(make_gateway, start_upstream, tmp_path, kind):
    gemini = agent_binary("gemini")
    gw = await gateway_for(make_gateway, start_upstream, kind, "gemini")
    work, home, note = workspace(tmp_path)
    (home / ".gemini").mkdir()
    (home / ".gemini" / "settings.json").write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    out = await run([str(gemini), "-m", "agent-endpoint", "-p", str(note)], work, {
        "HOME": str(home), "GOOGLE_GEMINI_BASE_URL": gw.url("/gemini"), "GEMINI_API_KEY": TOKEN,
        "GEMINI_CLI_TRUST_WORKSPACE": "true"})
    await assert_round_trip(gw, out)
