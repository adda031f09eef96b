"""Configuration: decoding, ${ENV} references, field-path errors, the embedded default."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, default_config, load_config, parse_config

BASE = {"providers": {"p": {"kind": "mock"}},
        "endpoints": [{"name": "e", "served_entities": [{"provider": "p", "model": "echo"}]}]}


def test_env_references_and_defaults_are_expanded():
    cfg = parse_config({"providers": {"o": {"kind": "openai", "api_key": "${KEY}",
                                            "base_url": "${BASE:-https://example.test/v1}"}}}, env={"KEY": "sk-1"})
    assert cfg.providers["o"].api_key == "sk-1" and cfg.providers["o"].base_url == "https://example.test/v1"


def test_missing_env_names_the_field_not_a_value():
    with pytest.raises(ConfigError, match=r"^tokens\[0\]\.token: environment variable T is not set$"):
        parse_config({"tokens": [{"principal": "a", "token": "${T}"}]}, env={})


@pytest.mark.parametrize("raw, message", [
    ({**BASE, "endpoints": [{"name": "e", "served_entities": []}]}, r"endpoints\[0\]\.served_entities: at least one"),
    ({**BASE, "endpoints": [{"name": "bad name!", "served_entities": [{"provider": "p", "model": "m"}]}]},
     r"endpoints\[0\]\.name: 'bad name!' may only contain"),
    ({**BASE, "endpoints": BASE["endpoints"] * 2}, r"endpoints\[1\]\.name: duplicate endpoint 'e'"),
    ({**BASE, "providers": {"p": {"kind": "opnai"}}}, r"providers\.p\.kind: Invalid enum value 'opnai'"),
    ({**BASE, "providers": {"p": {"kind": "anthropic"}}}, r"providers\.p\.api_key: required"),
    ({**BASE, "providers": {"p": {"kind": "mock", "colour": "red"}}}, r"providers\.p: Object contains unknown field `colour`"),
    ({**BASE, "tokens": [{"principal": "a", "sha256": "abc"}]}, r"tokens\[0\]\.sha256: must be 64 hex"),
    ({**BASE, "tokens": [{"principal": "a"}]}, r"tokens\[0\]: give exactly one"),
    ({**BASE, "storage": {"kind": "postgres"}}, r"storage\.dsn: required"),
    ({**BASE, "providers": {"p": {"kind": "openai", "api_key": "sk-secret\n"}}},
     r"^providers\.p\.api_key: contains a line break or another control character$"),
    ({**BASE, "providers": {"p": {"kind": "mock", "headers": {"x-team": "a\r\nx-evil: 1"}}}},
     r"^providers\.p\.headers\.x-team: contains a line break"),
    ({**BASE, "providers": {"p": {"kind": "mock", "headers": {"x team": "a"}}}},
     r"^providers\.p\.headers: 'x team' is not a valid header name$"),
])
def test_bad_fields_are_named_by_path(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, env={})


def test_toml_files_load_too(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[providers.p]\nkind = "mock"\n\n[[endpoints]]\nname = "e"\n'
                    'served_entities = [{provider = "p", model = "echo"}]\n')
    assert load_config(path).endpoints[0].name == "e"


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_embedded_default_adds_providers_whose_keys_are_set():
    names = {e.name for e in default_config("/tmp/x", env={}).endpoints}
    assert names == {"mock-chat", "mock-tools", "mock-slow", "mock-fallback", "mock-embeddings"}
    cfg = default_config("/tmp/x", env={"ANTHROPIC_API_KEY": "a", "GEMINI_API_KEY": "g"})
    names = {e.name for e in cfg.endpoints}
    assert {"anthropic-chat", "gemini-chat", "gemini-embeddings"} <= names and "openai-chat" not in names
    assert cfg.providers["anthropic"].api_key == "a"
