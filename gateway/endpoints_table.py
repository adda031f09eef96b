"""Endpoints managed at run time: the admin API writes them to the store, and every worker
reloads them every few seconds into its ``EndpointRegistry``. The configuration file seeds
the table: at start, the endpoints it names are written as the file says (so editing the
file and restarting takes effect), and endpoints an earlier start seeded from the file but
the file no longer names are removed; endpoints created through the admin API persist.
Each row records its ``source``: ``config`` or ``api`` (changed through the admin API).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping

import msgspec

from gateway.config import ConfigError, EndpointConfig, GatewayConfig, check_endpoint
from gateway.store import Store

log = logging.getLogger("gateway.endpoints")

_SCHEMA = {
    "sqlite": "CREATE TABLE IF NOT EXISTS endpoints (name TEXT PRIMARY KEY, config TEXT NOT NULL, "
              "updated_at REAL NOT NULL, source TEXT NOT NULL DEFAULT 'api')",
    "postgres": "CREATE TABLE IF NOT EXISTS endpoints (name TEXT PRIMARY KEY, config TEXT NOT NULL, "
                "updated_at DOUBLE PRECISION NOT NULL, source TEXT NOT NULL DEFAULT 'api')",
}
_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(EndpointConfig)


class EndpointRegistry(Mapping[str, EndpointConfig]):
    """The endpoints a worker serves, by name; swapped whole when the store changes."""

    def __init__(self, endpoints: dict[str, EndpointConfig]) -> None:
        self._current = endpoints

    def replace(self, endpoints: dict[str, EndpointConfig]) -> None:
        self._current = endpoints

    def put(self, endpoint: EndpointConfig) -> None:
        self._current = {**self._current, endpoint.name: endpoint}

    def remove(self, name: str) -> None:
        self._current = {k: v for k, v in self._current.items() if k != name}

    def __getitem__(self, name: str) -> EndpointConfig:
        return self._current[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current)

    def __len__(self) -> int:
        return len(self._current)


class EndpointsTable:
    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._store = Store(config, _SCHEMA)
        self._skipped: set[str] = set()  # warned about once, not at every reload

    async def seed(self) -> None:
        """Write the configuration's endpoints as the file says, and drop those an earlier
        file seeded that this one no longer names."""
        # Rows from before the source column: kept, as anything the file did not seed is.
        await self._store.add_column("endpoints", "source", "TEXT NOT NULL DEFAULT 'api'")
        for ep in self._config.endpoints:
            await self.put(ep, source="config")
        names = [ep.name for ep in self._config.endpoints]
        for (name,) in await self._store.run("SELECT name FROM endpoints WHERE source = 'config'"):
            if name not in names:
                await self.delete(name)
                log.info("endpoint %r was seeded from an earlier configuration file and is removed", name)

    async def load(self) -> dict[str, EndpointConfig]:
        """Every stored endpoint that is still valid against this configuration's providers."""
        out: dict[str, EndpointConfig] = {}
        for name, raw in await self._store.run("SELECT name, config FROM endpoints ORDER BY name"):
            try:
                ep = _decode.decode(raw)
                check_endpoint(ep, f"endpoints[{name}]", self._config)
            except (msgspec.DecodeError, msgspec.ValidationError, ConfigError) as exc:
                if name not in self._skipped:
                    self._skipped.add(name)
                    log.warning("stored endpoint %r is not valid with this configuration and is skipped: %s", name, exc)
                continue
            out[name] = ep
        # Configuration order first (what check-config and listings show), then the rest.
        ordered = {ep.name: out[ep.name] for ep in self._config.endpoints if ep.name in out}
        return {**ordered, **out}

    async def put(self, endpoint: EndpointConfig, source: str = "api") -> None:
        """Write ``endpoint``; ``source`` is ``config`` when seeded from the file, else ``api``."""
        await self._store.run(
            "INSERT INTO endpoints (name, config, updated_at, source) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at, "
            "source = excluded.source",
            (endpoint.name, _encode.encode(endpoint).decode(), time.time(), source),
        )

    async def close(self) -> None:
        """Release the store connection."""
        await self._store.close()

    async def delete(self, name: str) -> bool:
        return bool(await self._store.run("DELETE FROM endpoints WHERE name = $1 RETURNING name", (name,)))
