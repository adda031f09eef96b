"""The command line: serve (embedded default and --workers), check-config, usage."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest

from gateway.cli import main
from tests.test_faults import free_port

CONFIG = textwrap.dedent("""
    server: {port: 9999}
    providers:
      openai: {kind: openai, api_key: "${TEST_OPENAI_KEY}"}
      local: {kind: openai_compatible, base_url: "http://127.0.0.1:8000/v1"}
    endpoints:
      - name: system.ai.gpt-chat
        served_entities:
          - {provider: openai, model: gpt-4.1-mini, weight: 80}
          - {provider: local, model: llama, weight: 20}
        fallbacks: [{provider: local, model: qwen}]
    tokens:
      - {principal: alice, token: "${TEST_TOKEN}"}
""")


def test_check_config_prints_the_endpoints(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-secret-value")
    monkeypatch.setenv("TEST_TOKEN", "t")
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "system.ai.gpt-chat" in out and "openai/gpt-4.1-mini 80%" in out and "local/llama 20%" in out
    assert "local/qwen" in out and "sk-secret-value" not in out


def test_check_config_names_the_bad_field(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-secret-value")
    monkeypatch.setenv("TEST_TOKEN", "t")
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.replace("fallbacks: [{provider: local", "fallbacks: [{provider: opnai"))
    assert main(["check-config", str(path)]) == 2
    assert "endpoints[0].fallbacks[0].provider: unknown provider 'opnai'" in capsys.readouterr().err
    path.write_text(CONFIG.replace("weight: 80", "weight: lots"))
    assert main(["check-config", str(path)]) == 2
    assert "endpoints[0].served_entities[0].weight: Expected `int | null`, got `str`" in capsys.readouterr().err
    monkeypatch.delenv("TEST_OPENAI_KEY")
    assert main(["check-config", str(path)]) == 2
    assert "providers.openai.api_key: environment variable TEST_OPENAI_KEY is not set" in capsys.readouterr().err


class Served:
    def __init__(self, proc: subprocess.Popen, port: int, lines: list[str]) -> None:
        self.proc, self.port, self.lines = proc, port, lines

    @property
    def dev_token(self) -> str:
        return next(line.split(": ", 1)[1] for line in self.lines if line.startswith("dev token: "))


def start_serve(tmp_path: Path, *args: str, ready: int = 1) -> Served:
    """Start `gateway serve` and read its output until every worker says it is ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    while sum("ready on" in line for line in lines) < ready:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("gateway exited early:\n" + "".join(lines))
        lines.append(line.rstrip("\n"))
    return Served(proc, port, lines)


def stop(served: Served) -> str:
    served.proc.send_signal(signal.SIGINT)
    out, _ = served.proc.communicate(timeout=30)
    return out


def test_serve_embedded_default_answers_and_drains_usage_on_shutdown(tmp_path):
    served = start_serve(tmp_path)
    try:
        assert any("curl http://127.0.0.1" in line for line in served.lines)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{served.port}/mlflow/v1", api_key=served.dev_token, max_retries=0)
        reply = client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Echo: hi"
        fallback = client.chat.completions.create(model="mock-fallback", messages=[{"role": "user", "content": "x"}])
        assert fallback.choices[0].message.content == "Echo: x"
    finally:
        log = stop(served)
    assert served.proc.returncode == 0, log
    assert '"path":"/mlflow/v1/chat/completions"' in log and "dev-" not in log.split("dev token:")[-1]
    out = subprocess.run([sys.executable, "-m", "gateway", "usage", "--data-dir", str(tmp_path / "data"), "--since", "1h"],
                         capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert rows["mock-chat"][1] == "1" and rows["mock-fallback"][1] == "1"


def test_dev_token_survives_a_restart(tmp_path):
    first = start_serve(tmp_path)
    stop(first)
    second = start_serve(tmp_path)
    stop(second)
    assert first.dev_token == second.dev_token
    assert oct((tmp_path / "data" / "dev-token").stat().st_mode & 0o777) == "0o600"


@pytest.mark.skipif(not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_two_workers_share_the_port(tmp_path):
    served = start_serve(tmp_path, "--workers", "2", ready=2)
    try:
        pids = {m.group(1) for line in served.lines if (m := re.search(r"worker (\d+) ready", line))}
        assert len(pids) == 2
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{served.port}/v1", api_key=served.dev_token, max_retries=0)
        for _ in range(4):
            client.with_options(default_headers={"connection": "close"}).chat.completions.create(
                model="mock-chat", messages=[{"role": "user", "content": "x"}])
        import urllib.request

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{served.port}/metrics").read().decode()
        total = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                    if line.startswith('gateway_requests_total{') and 'endpoint="mock-chat"' in line)
        assert total == 4, "metrics aggregate every worker"
    finally:
        stop(served)
    assert served.proc.returncode == 0


def test_access_log_off_leaves_requests_out_of_the_log(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent("""
        server: {access_log: false}
        providers: {mock: {kind: mock}}
        endpoints: [{name: chat, served_entities: [{provider: mock, model: echo}]}]
        tokens: [{principal: alice, token: tok-alice}]
    """))
    served = start_serve(tmp_path, "--config", str(config))
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{served.port}/v1", api_key="tok-alice", max_retries=0)
        assert client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}]).choices
    finally:
        log = stop(served)
    assert served.proc.returncode == 0, log
    assert "/v1/chat/completions" not in log and "gateway.access" not in log
