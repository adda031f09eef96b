"""The route table: every path, under the bare and the /ai-gateway prefix."""

from __future__ import annotations

from aiohttp import web

from gateway.server import admin_api, anthropic_api, gemini_api, ops, responses_api, serving_api, unified

PREFIXES = ("", "/ai-gateway")

CHAT_PATHS = (
    "/mlflow/v1/chat/completions", "/v1/chat/completions", "/serving-endpoints/chat/completions",
    "/openai/v1/chat/completions", "/cursor/v1/chat/completions",
)
EMBEDDINGS_PATHS = ("/mlflow/v1/embeddings", "/v1/embeddings", "/serving-endpoints/embeddings", "/openai/v1/embeddings")
RESPONSES_PATHS = (
    "/mlflow/v1/responses", "/v1/responses", "/openai/v1/responses", "/serving-endpoints/responses", "/codex/v1/responses",
)
MODELS_PATHS = ("/mlflow/v1/models", "/v1/models", "/openai/v1/models")
GEMINI_VERSIONS = ("v1beta", "v1")  # google-genai 3.x calls /v1, Gemini CLI /v1beta


def add_routes(app: web.Application) -> None:
    routes: list[web.RouteDef] = []
    for prefix in PREFIXES:
        routes += [web.post(prefix + p, unified.chat_completions) for p in CHAT_PATHS]
        routes += [web.post(prefix + p, unified.embeddings) for p in EMBEDDINGS_PATHS]
        routes += [web.post(prefix + p, responses_api.create_response) for p in RESPONSES_PATHS]
        routes += [web.get(prefix + p, unified.list_models, allow_head=False) for p in MODELS_PATHS]
        routes += [
            web.post(prefix + "/anthropic/v1/messages", anthropic_api.create_message),
            web.post(prefix + "/anthropic/v1/messages/count_tokens", anthropic_api.count_tokens),
            web.get(prefix + "/anthropic/v1/models", anthropic_api.list_models, allow_head=False),
            web.head(prefix + "/anthropic", anthropic_api.probe),
            web.head(prefix + "/anthropic/", anthropic_api.probe),
        ]
        routes += [
            web.post(prefix + "/serving-endpoints/{endpoint}/invocations", serving_api.invocations),
            web.post(prefix + "/serving-endpoints/apps/{app}/invocations", serving_api.app_invocations),
            web.get(prefix + "/api/2.0/serving-endpoints", serving_api.list_endpoints, allow_head=False),
            web.get(prefix + "/api/2.0/serving-endpoints/{name}", serving_api.get_endpoint, allow_head=False),
            web.post(prefix + "/api/2.0/serving-endpoints", admin_api.create_endpoint),
            web.put(prefix + "/api/2.0/serving-endpoints/{name}", admin_api.update_endpoint),
            web.delete(prefix + "/api/2.0/serving-endpoints/{name}", admin_api.delete_endpoint),
            web.put(prefix + "/api/2.0/serving-endpoints/{name}/ai-gateway", admin_api.put_ai_gateway),
            web.get(prefix + "/api/2.0/permissions/serving-endpoints/{name}", admin_api.get_permissions,
                    allow_head=False),
            web.put(prefix + "/api/2.0/permissions/serving-endpoints/{name}", admin_api.put_permissions),
            web.post(prefix + "/api/2.0/token-management/tokens", admin_api.create_token),
            web.get(prefix + "/api/2.0/token-management/tokens", admin_api.list_tokens, allow_head=False),
            web.delete(prefix + "/api/2.0/token-management/tokens/{token_id}", admin_api.revoke_token),
        ]
        for version in GEMINI_VERSIONS:
            routes.append(web.post(f"{prefix}/gemini/{version}/models/{{call}}", gemini_api.call_model))
            routes.append(web.get(f"{prefix}/gemini/{version}/models", gemini_api.list_models, allow_head=False))
        routes += [
            web.get(prefix + "/healthz", ops.healthz, allow_head=False),
            web.get(prefix + "/readyz", ops.readyz, allow_head=False),
            web.get(prefix + "/metrics", ops.prometheus, allow_head=False),
        ]
    app.add_routes(routes)
