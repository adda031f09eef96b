"""The configuration file, decoded into frozen Structs.

``load_config(path)`` reads YAML or TOML, expands ``${VAR}`` / ``${VAR:-default}``
references from the environment, converts into ``GatewayConfig`` and checks the
cross-references (an entity's provider must exist). Every error names the path of the
bad field, e.g. ``endpoints[2].fallbacks[0].provider: unknown provider 'opnai'``.
Secret values are never included in an error message.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from gateway.limits.config import LimiterConfig, LimitRule, check_rules

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

ProviderKind = Literal["openai", "anthropic", "gemini", "openai_compatible", "azure_openai", "agent_app", "mock"]
#: What an ``agent_app`` provider's upstream speaks.
AgentAPI = Literal["responses", "chat_completions"]
#: The prefix of the agent-app namespace: ``model="apps/<name>"`` names a registered app.
APP_PREFIX = "apps/"


class ConfigError(Exception):
    """A configuration problem; the message starts with the path of the bad field."""


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Timeouts(_Base, kw_only=True):
    """Seconds. ``first_byte`` bounds the wait for response headers and for each read after."""

    connect: float = 10.0
    first_byte: float = 120.0
    total: float = 600.0


#: Agents run tools and models in a loop before they answer: a non-streamed turn may take
#: minutes, so an ``agent_app`` provider without ``timeouts`` waits longer than a model's.
AGENT_TIMEOUTS = Timeouts(connect=10.0, first_byte=600.0, total=1800.0)


class ProviderConfig(_Base, kw_only=True):
    """One upstream. ``api`` is for ``agent_app`` (the API the app serves, default
    ``responses``); ``api_version`` for ``azure_openai`` (a dated version for the
    deployments URLs, default ``2024-10-21``, or ``v1`` for the ``/openai/v1/`` API)."""

    kind: ProviderKind
    api_key: str | None = None
    base_url: str | None = None
    headers: dict[str, str] = {}
    timeouts: Timeouts = Timeouts()
    max_connections: int = 256
    api: AgentAPI | None = None
    api_version: str | None = None


class ServedEntity(_Base, kw_only=True):
    """One provider model that serves an endpoint.

    ``weight`` is its traffic percentage (the split's weights add up to 100; a lone entity
    needs none). ``timeouts`` replaces the provider's timeouts for this entity.
    """

    provider: str
    model: str
    weight: int | None = None
    timeouts: Timeouts | None = None

    @property
    def key(self) -> str:
        """``provider/model``: how attempts, breakers and metrics name the entity."""
        return f"{self.provider}/{self.model}"


class RetryConfig(_Base, kw_only=True):
    """Retries of the same entity on retryable errors, before falling back."""

    attempts: int = 0  # extra tries per entity
    backoff_ms: int = 200  # base of the jittered exponential backoff
    max_backoff_ms: int = 5000


class CircuitBreakerConfig(_Base, kw_only=True):
    """After ``failures`` consecutive retryable failures an entity is skipped for
    ``cooldown_s``, then one probe request decides (half-open)."""

    enabled: bool = True
    failures: int = 5
    cooldown_s: float = 30.0


class RoutingConfig(_Base, kw_only=True):
    session_header: str | None = None  # pins a session to one entity of the split
    first_token_timeout: float | None = None  # seconds to the first streamed event, then fall over
    retries: RetryConfig = RetryConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()


PrincipalKind = Literal["user", "service_principal"]


class Permission(_Base, kw_only=True):
    """A grant on an endpoint to one user (``principal``), one service principal or one group.

    Users and service principals are separate namespaces: a grant to user ``ci-bot`` does
    not cover a service principal of that name.
    """

    principal: str | None = None
    service_principal: str | None = None
    group: str | None = None
    level: Literal["CAN_QUERY", "CAN_MANAGE"] = "CAN_QUERY"


class InferenceTableConfig(_Base, kw_only=True):
    """Request and response payloads of an endpoint, kept in the store's ``inference`` table.

    Each payload is kept up to ``max_payload_bytes`` (the row says when one was cut).
    """

    enabled: bool = False
    max_payload_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1_048_576


# ---- guardrails -----------------------------------------------------------------------------

#: The Databricks PII behaviours: NONE detects and counts, BLOCK refuses, MASK rewrites the text.
GuardrailBehavior = Literal["NONE", "BLOCK", "MASK"]
#: Checks the gateway names itself; a custom pattern may not take one of these names.
BUILT_IN_GUARDRAILS = ("invalid_keywords", "pii", "safety", "valid_topics")
MAX_GUARDRAIL_PATTERNS = 50
MAX_PATTERN_CHARS = 1000


class PiiGuardrail(_Base, kw_only=True):
    behavior: GuardrailBehavior = "NONE"


class GuardrailPattern(_Base, kw_only=True):
    """A custom regular expression (Python syntax), named in block messages and metrics."""

    name: str
    pattern: str
    behavior: GuardrailBehavior = "BLOCK"


class GuardrailParameters(_Base, kw_only=True):
    """One stage's checks, in Databricks' ``AiGatewayGuardrailParameters`` shape plus ``patterns``.

    ``safety`` and ``valid_topics`` are judged by the ``guardrail_judge`` endpoint.
    """

    safety: bool = False
    pii: PiiGuardrail | None = None
    invalid_keywords: list[str] = []
    valid_topics: list[str] = []
    patterns: list[GuardrailPattern] = []


class GuardrailsConfig(_Base, kw_only=True):
    input: GuardrailParameters | None = None
    output: GuardrailParameters | None = None


class GuardrailJudgeConfig(_Base, kw_only=True):
    """The gateway endpoint that judges ``safety`` and ``valid_topics``, and what a failed
    judgement means: refused (``fail_open: false``, the default) or let through."""

    endpoint: str | None = None
    fail_open: bool = False
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    max_chars: Annotated[int, msgspec.Meta(ge=100)] = 20_000  # the judge reads the last this many characters


def parse_guardrails(raw: Any, where: str) -> GuardrailsConfig | None:
    """``raw`` (a mapping) as GuardrailsConfig; ``{}`` means none. Errors name the path under ``where``."""
    try:
        guardrails = msgspec.convert(raw, GuardrailsConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(_msgspec_path(exc, where)) from None
    return None if guardrails.input is None and guardrails.output is None else guardrails


def _check_guardrails(ep: EndpointConfig, where: str, cfg: GatewayConfig) -> None:
    if ep.guardrails is None:
        return
    at = f"{where}.guardrails".lstrip(".")
    if ep.task != "chat":
        raise ConfigError(f"{at}: guardrails apply to chat endpoints only")
    for stage in ("input", "output"):
        params: GuardrailParameters | None = getattr(ep.guardrails, stage)
        if params is None:
            continue
        here = f"{at}.{stage}"
        judged = [name for name in ("safety", "valid_topics") if getattr(params, name)]
        if judged and not cfg.guardrail_judge.endpoint:
            raise ConfigError(f"{here}.{judged[0]}: needs a judge endpoint; set guardrail_judge.endpoint "
                              "in the configuration to a chat endpoint")
        if stage == "output" and params.valid_topics:
            raise ConfigError(f"{here}.valid_topics: topics are checked on input only")
        for name in ("invalid_keywords", "valid_topics"):
            for j, word in enumerate(getattr(params, name)):
                if not word.strip():
                    raise ConfigError(f"{here}.{name}[{j}]: must not be empty")
        if len(params.patterns) > MAX_GUARDRAIL_PATTERNS:
            raise ConfigError(f"{here}.patterns: at most {MAX_GUARDRAIL_PATTERNS} patterns")
        names: set[str] = set()
        for j, pat in enumerate(params.patterns):
            if not NAME_RE.match(pat.name) or pat.name in BUILT_IN_GUARDRAILS or pat.name in names:
                raise ConfigError(f"{here}.patterns[{j}].name: {pat.name!r} must be unique, of letters, digits, "
                                  f"'.', '-', '_', and none of {', '.join(BUILT_IN_GUARDRAILS)}")
            names.add(pat.name)
            if len(pat.pattern) > MAX_PATTERN_CHARS:
                raise ConfigError(f"{here}.patterns[{j}].pattern: at most {MAX_PATTERN_CHARS} characters")
            try:
                compiled = re.compile(pat.pattern)
            except re.error as exc:
                raise ConfigError(f"{here}.patterns[{j}].pattern: not a valid regular expression: {exc}") from None
            if compiled.match(""):
                raise ConfigError(f"{here}.patterns[{j}].pattern: matches the empty string")


def _check_judge(cfg: GatewayConfig) -> None:
    name = cfg.guardrail_judge.endpoint
    if name is None:
        return
    judge = cfg.endpoint_map().get(name)
    if judge is None:
        raise ConfigError(f"guardrail_judge.endpoint: unknown endpoint {name!r}")
    if judge.task != "chat":
        raise ConfigError(f"guardrail_judge.endpoint: {name!r} serves embeddings; the judge must be a chat endpoint")


MAX_SERVED_ENTITIES = 10
MAX_FALLBACKS = 5


class EndpointConfig(_Base, kw_only=True):
    name: str
    task: Literal["chat", "embeddings"] = "chat"
    served_entities: list[ServedEntity]
    fallbacks: list[ServedEntity] = []
    fallbacks_enabled: bool = True  # the admin API's fallback_config switch; off keeps the list
    routing: RoutingConfig = RoutingConfig()
    rate_limits: list[LimitRule] = []
    permissions: list[Permission] = []  # empty: every authenticated caller may query
    inference_table: InferenceTableConfig = InferenceTableConfig()
    guardrails: GuardrailsConfig | None = None


class AppConfig(_Base, kw_only=True):
    """An agent app, called as ``model="apps/<name>"``: served by one ``agent_app`` provider,
    governed like an endpoint (permissions, rate limits, inference table)."""

    name: str
    provider: str
    permissions: list[Permission] = []
    rate_limits: list[LimitRule] = []
    inference_table: InferenceTableConfig = InferenceTableConfig()

    def endpoint(self) -> EndpointConfig:
        """The app as the endpoint the pipeline routes, named ``apps/<name>`` (a name no
        configured endpoint can have: endpoint names have no ``/``)."""
        return EndpointConfig(
            name=APP_PREFIX + self.name,
            # The app is sent the name its caller used, apps/<name>, relayed or translated.
            served_entities=[ServedEntity(provider=self.provider, model=APP_PREFIX + self.name)],
            rate_limits=self.rate_limits, permissions=self.permissions, inference_table=self.inference_table,
        )


class TokenConfig(_Base, kw_only=True):
    """A caller token: give ``token`` (usually ``${ENV}``) or its hex ``sha256``.

    ``kind`` says whether ``principal`` names a user or a service principal (an
    application); permissions and rate limits name them separately.
    """

    principal: str
    kind: PrincipalKind = "user"
    groups: list[str] = []
    token: str | None = None
    sha256: str | None = None
    admin: bool = False  # may query and manage every endpoint


class StorageConfig(_Base, kw_only=True):
    kind: Literal["sqlite", "postgres"] = "sqlite"
    path: str | None = None  # SQLite file; default <data_dir>/usage.db
    dsn: str | None = None  # PostgreSQL
    batch_size: Annotated[int, msgspec.Meta(ge=1)] = 5000  # a commit per batch: bigger batches, fewer fsyncs
    flush_interval_ms: int = 200
    queue_size: int = 100_000
    # PostgreSQL: the most a statement (a batch write, a store read, a close) may take before it
    # is cancelled and fails; a database holding a lock or gone silent cannot stall the gateway.
    command_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0


class ServerConfig(_Base, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024
    data_dir: str = ".gateway"
    store_refresh_s: float = 2.0  # how often run-time tokens and admin-managed endpoints are reloaded
    responses_retention_s: float = 3600.0  # how long previous_response_id can refer back
    responses_max_stored: int = 10_000
    access_log: bool = True  # one JSON line per request on stderr; the usage table has the same and more


class GatewayConfig(_Base, kw_only=True):
    server: ServerConfig = ServerConfig()
    providers: dict[str, ProviderConfig] = {}
    endpoints: list[EndpointConfig] = []
    apps: list[AppConfig] = []
    tokens: list[TokenConfig] = []
    storage: StorageConfig = StorageConfig()
    limiter: LimiterConfig = LimiterConfig()
    guardrail_judge: GuardrailJudgeConfig = GuardrailJudgeConfig()

    def endpoint_map(self) -> dict[str, EndpointConfig]:
        return {e.name: e for e in self.endpoints}

    def app_map(self) -> dict[str, EndpointConfig]:
        """The agent apps, as endpoints keyed ``apps/<name>``."""
        return {APP_PREFIX + a.name: a.endpoint() for a in self.apps}


def _expand_env(node: Any, path: str, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        def sub(m: re.Match[str]) -> str:
            value = env.get(m.group(1))
            if value is None:
                if m.group(2) is None:
                    raise ConfigError(f"{path}: environment variable {m.group(1)} is not set")
                return m.group(2)
            return value
        return _ENV_RE.sub(sub, node)
    if isinstance(node, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k), env) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", env) for i, v in enumerate(node)]
    return node


def _msgspec_path(err: msgspec.ValidationError, prefix: str = "") -> str:
    # msgspec says "Expected `int`, got `str` - at `$.endpoints[0].weight`"; lead with the path.
    text = str(err)
    m = re.search(r" - at `\$([^`]*)`$", text)
    if not m:
        return f"{prefix}: {text}" if prefix else text
    path = (prefix + m.group(1)).lstrip(".")
    return f"{path or '<root>'}: {text[: m.start()]}"


def _check(cfg: GatewayConfig) -> None:
    seen: set[str] = set()
    for i, ep in enumerate(cfg.endpoints):
        where = f"endpoints[{i}]"
        if ep.name in seen:
            raise ConfigError(f"{where}.name: duplicate endpoint {ep.name!r}")
        seen.add(ep.name)
        check_endpoint(ep, where, cfg)
    _check_judge(cfg)
    for name, prov in cfg.providers.items():
        _check_header_values(prov, f"providers.{name}")
        if prov.kind in ("openai", "anthropic", "gemini") and not prov.api_key:
            raise ConfigError(f"providers.{name}.api_key: required for kind {prov.kind!r}")
        if prov.kind in ("openai_compatible", "azure_openai", "agent_app") and not prov.base_url:
            raise ConfigError(f"providers.{name}.base_url: required for kind {prov.kind!r}")
        if prov.kind == "azure_openai" and not prov.api_key and "authorization" not in map(str.lower, prov.headers):
            raise ConfigError(f"providers.{name}.api_key: required for kind 'azure_openai' "
                              "(or an Entra ID token as headers.Authorization: Bearer ...)")
        if prov.api is not None and prov.kind != "agent_app":
            raise ConfigError(f"providers.{name}.api: only for kind 'agent_app'")
        if prov.api_version is not None and prov.kind != "azure_openai":
            raise ConfigError(f"providers.{name}.api_version: only for kind 'azure_openai'")
        if prov.kind != "agent_app" and any(a.provider == name for a in cfg.apps):
            j = next(j for j, a in enumerate(cfg.apps) if a.provider == name)
            raise ConfigError(f"apps[{j}].provider: {name!r} is of kind {prov.kind!r}, not 'agent_app'")
    _check_apps(cfg)
    for i, tok in enumerate(cfg.tokens):
        if bool(tok.token) == bool(tok.sha256):
            raise ConfigError(f"tokens[{i}]: give exactly one of 'token' or 'sha256'")
        if tok.sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", tok.sha256):
            raise ConfigError(f"tokens[{i}].sha256: must be 64 hex characters")
    if cfg.storage.kind == "postgres" and not cfg.storage.dsn:
        raise ConfigError("storage.dsn: required for kind 'postgres'")


def _check_apps(cfg: GatewayConfig) -> None:
    seen: set[str] = set()
    for i, app in enumerate(cfg.apps):
        where = f"apps[{i}]"
        if not NAME_RE.match(app.name):
            raise ConfigError(f"{where}.name: {app.name!r} may only contain letters, digits, '.', '-', '_'")
        if app.name in seen:
            raise ConfigError(f"{where}.name: duplicate app {app.name!r}")
        seen.add(app.name)
        if app.provider not in cfg.providers:
            raise ConfigError(f"{where}.provider: unknown provider {app.provider!r}")
        check_endpoint(app.endpoint(), where, cfg, name_checked=True)


#: An HTTP header name (RFC 9110 token), and what no header value may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_header_values(prov: ProviderConfig, where: str) -> None:
    # A key read from a file with its trailing newline would split the request head; the
    # error names the field, never the value (it may be a credential).
    if prov.api_key and _CONTROL.search(prov.api_key):
        raise ConfigError(f"{where}.api_key: contains a line break or another control character")
    for header, value in prov.headers.items():
        if not _HEADER_NAME.fullmatch(header):
            raise ConfigError(f"{where}.headers: {header!r} is not a valid header name")
        if _CONTROL.search(value):
            raise ConfigError(f"{where}.headers.{header}: contains a line break or another control character")


def check_endpoint(ep: EndpointConfig, where: str, cfg: GatewayConfig, *, name_checked: bool = False) -> None:
    """Everything about one endpoint that its Struct alone cannot check; ``where`` prefixes
    the path in the error (``endpoints[2]``, or ``''`` for an admin API body).
    ``name_checked``: an app's endpoint, whose ``apps/`` name was checked as the app's."""
    if not name_checked and not NAME_RE.match(ep.name):
        raise ConfigError(f"{where}.name: {ep.name!r} may only contain letters, digits, '.', '-', '_'".lstrip("."))
    _check_entities(ep, where, cfg)
    for j, grant in enumerate(ep.permissions):
        if sum(x is not None for x in (grant.principal, grant.service_principal, grant.group)) != 1:
            raise ConfigError(f"{where}.permissions[{j}]: name exactly one of 'principal', 'service_principal' "
                              "or 'group'".lstrip("."))
    try:
        check_rules(ep.rate_limits)
    except ValueError as exc:
        raise ConfigError(f"{where}.rate_limits{exc}".lstrip(".")) from None
    _check_guardrails(ep, where, cfg)


def _check_entities(ep: EndpointConfig, where: str, cfg: GatewayConfig) -> None:
    served = ep.served_entities
    if not served:
        raise ConfigError(f"{where}.served_entities: at least one served entity is required")
    if len(served) > MAX_SERVED_ENTITIES:
        raise ConfigError(f"{where}.served_entities: at most {MAX_SERVED_ENTITIES} served entities")
    if len(ep.fallbacks) > MAX_FALLBACKS:
        raise ConfigError(f"{where}.fallbacks: at most {MAX_FALLBACKS} fallbacks")
    for group in ("served_entities", "fallbacks"):
        for j, ent in enumerate(getattr(ep, group)):
            if ent.provider not in cfg.providers:
                raise ConfigError(f"{where}.{group}[{j}].provider: unknown provider {ent.provider!r}")
            if group == "fallbacks" and ent.weight is not None:
                raise ConfigError(f"{where}.fallbacks[{j}].weight: fallbacks are tried in order and take no weight")
            if ent.weight is not None and not 0 <= ent.weight <= 100:
                raise ConfigError(f"{where}.{group}[{j}].weight: a percentage from 0 to 100")
    if len(served) > 1:
        if any(e.weight is None for e in served):
            j = next(j for j, e in enumerate(served) if e.weight is None)
            raise ConfigError(f"{where}.served_entities[{j}].weight: required when traffic is split")
        if sum(e.weight or 0 for e in served) != 100:
            raise ConfigError(f"{where}.served_entities: weights must add up to 100")
    routing = ep.routing
    if routing.first_token_timeout is not None and routing.first_token_timeout <= 0:
        raise ConfigError(f"{where}.routing.first_token_timeout: must be > 0")
    if not 0 <= routing.retries.attempts <= 5:
        raise ConfigError(f"{where}.routing.retries.attempts: from 0 to 5")
    if routing.circuit_breaker.failures < 1:
        raise ConfigError(f"{where}.routing.circuit_breaker.failures: must be >= 1")


def parse_config(raw: Any, env: dict[str, str] | None = None) -> GatewayConfig:
    """Validate an already-parsed document (dict) into a GatewayConfig."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("<root>: expected a mapping")
    expanded = _expand_env(raw, "", dict(os.environ) if env is None else env)
    providers = expanded.get("providers")
    agent_defaults: list[str] = []
    if isinstance(providers, dict):
        # msgspec names a bad dict entry "[...]"; check each provider alone to name it.
        for name, provider in providers.items():
            try:
                kind = msgspec.convert(provider, ProviderConfig).kind
            except msgspec.ValidationError as exc:
                raise ConfigError(_msgspec_path(exc, f"providers.{name}")) from None
            if kind == "agent_app" and "timeouts" not in provider:
                agent_defaults.append(name)
    try:
        cfg = msgspec.convert(expanded, GatewayConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(_msgspec_path(exc)) from None
    if agent_defaults:
        cfg = msgspec.structs.replace(cfg, providers={
            name: msgspec.structs.replace(p, timeouts=AGENT_TIMEOUTS) if name in agent_defaults else p
            for name, p in cfg.providers.items()
        })
    _check(cfg)
    return cfg


def load_config(path: str | Path, env: dict[str, str] | None = None) -> GatewayConfig:
    """Read and validate a YAML (or .toml) configuration file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text) if p.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{p}: not valid {'TOML' if p.suffix == '.toml' else 'YAML'}: {exc}") from None
    return parse_config(raw, env)


def default_config(data_dir: str, env: dict[str, str] | None = None) -> GatewayConfig:
    """The embedded default: mock endpoints, plus real providers whose API keys are set."""
    env = dict(os.environ) if env is None else env
    providers: dict[str, Any] = {"mock": {"kind": "mock"}}
    endpoints: list[dict[str, Any]] = [
        {"name": "mock-chat", "served_entities": [{"provider": "mock", "model": "echo"}]},
        {"name": "mock-tools", "served_entities": [{"provider": "mock", "model": "tool"}]},
        {"name": "mock-slow", "served_entities": [{"provider": "mock", "model": "echo+slow-50ms"}]},
        {
            "name": "mock-fallback",
            "served_entities": [{"provider": "mock", "model": "error-503"}],
            "fallbacks": [{"provider": "mock", "model": "echo"}],
        },
        {"name": "mock-embeddings", "task": "embeddings",
         "served_entities": [{"provider": "mock", "model": "embed"}]},
    ]
    real = (
        ("OPENAI_API_KEY", "openai", "gpt-4.1-mini", "text-embedding-3-small"),
        ("ANTHROPIC_API_KEY", "anthropic", "claude-sonnet-4-5", None),
        ("GEMINI_API_KEY", "gemini", "gemini-2.5-flash", "gemini-embedding-001"),
    )
    for var, kind, chat_model, embed_model in real:
        if env.get(var):
            providers[kind] = {"kind": kind, "api_key": "${%s}" % var}
            endpoints.append({"name": f"{kind}-chat", "served_entities": [{"provider": kind, "model": chat_model}]})
            if embed_model:
                endpoints.append({"name": f"{kind}-embeddings", "task": "embeddings",
                                  "served_entities": [{"provider": kind, "model": embed_model}]})
    return parse_config(
        {"server": {"data_dir": data_dir}, "providers": providers, "endpoints": endpoints}, env
    )
