"""The aiohttp edge: routes, middlewares, auth, responses. No LLM knowledge here."""
