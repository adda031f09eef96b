"""The gateway: a self-hosted AI gateway on aiohttp."""

__version__ = "0.1.0"
