"""The admin API: endpoints created, changed and removed at run time, persisted, seen by a
second worker after its reload, with permissions and rate limits."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.state import STORE_REFRESHER
from tests.conftest import OTHER_TOKEN, TOKEN

ADMIN = "gw-admin-token-42"
TOKENS = [
    {"principal": "alice@example.com", "groups": ["ml"], "token": TOKEN},
    {"principal": "bob@example.com", "token": OTHER_TOKEN},
    {"principal": "root", "token": ADMIN, "admin": True},
]
PROVIDERS = {"mock": {"kind": "mock"}, "mock2": {"kind": "mock"}}
SEED = [{"name": "seeded", "served_entities": [{"provider": "mock", "model": "echo"}]}]


def body(*entities: tuple[str, str, int | None], fallbacks: tuple[tuple[str, str], ...] = ()) -> dict:  # type: ignore[type-arg]
    served = [{"name": f"e{i}", "external_model": {"provider": p, "name": m}} for i, (p, m, _) in enumerate(entities)]
    routes = [{"served_model_name": f"e{i}", "traffic_percentage": w} for i, (_, _, w) in enumerate(entities) if w]
    return {"config": {"served_entities": served, "traffic_config": {"routes": routes},
                       "fallbacks": [{"external_model": {"provider": p, "name": m}} for p, m in fallbacks]}}


async def call(gw, method: str, path: str, token: str = ADMIN, json: dict | None = None):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as s:
        async with s.request(method, gw.url(path), json=json, headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status, await r.json()


async def chat(gw, model: str, token: str = TOKEN) -> tuple[int, dict]:  # type: ignore[no-untyped-def, type-arg]
    return await call(gw, "POST", "/v1/chat/completions", token, {"model": model, "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
async def workers(make_gateway):  # type: ignore[no-untyped-def]
    """Two apps on one store, as two worker processes would be; reloads happen when a test says."""
    quiet = {"store_refresh_s": 3600}
    return (await make_gateway(PROVIDERS, SEED, tokens=TOKENS, server=quiet),
            await make_gateway(PROVIDERS, SEED, tokens=TOKENS, server=quiet))


async def test_create_update_delete_seen_by_another_worker(workers):
    first, second = workers
    status, created = await call(first, "POST", "/api/2.0/serving-endpoints",
                                 json={"name": "team-chat", **body(("mock", "echo", None), fallbacks=(("mock2", "echo"),))})
    assert status == 200 and created["name"] == "team-chat"
    assert created["config"]["fallbacks"] == [{"external_model": {"provider": "mock2", "name": "echo"}}]
    assert (await chat(first, "team-chat"))[0] == 200
    assert (await chat(second, "team-chat"))[0] == 404  # before its reload
    await second.app[STORE_REFRESHER].load()
    assert (await chat(second, "team-chat"))[0] == 200
    status, updated = await call(first, "PUT", "/api/2.0/serving-endpoints/team-chat",
                                 json=body(("mock", "echo", 50), ("mock2", "error-500", 50)))
    assert status == 200 and [r["traffic_percentage"] for r in updated["config"]["traffic_config"]["routes"]] == [50, 50]
    assert (await call(first, "DELETE", "/api/2.0/serving-endpoints/team-chat"))[0] == 200
    await second.app[STORE_REFRESHER].load()
    assert (await chat(first, "team-chat"))[0] == 404 and (await chat(second, "team-chat"))[0] == 404


async def test_bad_bodies_and_who_may_manage(workers):
    first, _ = workers
    status, err = await call(first, "POST", "/api/2.0/serving-endpoints", json={"name": "x", **body(("nope", "m", None))})
    assert status == 400 and err["error_code"] == "INVALID_PARAMETER_VALUE" and "unknown provider 'nope'" in err["message"]
    status, err = await call(first, "POST", "/api/2.0/serving-endpoints", json={"name": "seeded", **body(("mock", "echo", None))})
    assert status == 400 and "already exists" in err["message"]
    status, err = await call(first, "POST", "/api/2.0/serving-endpoints", TOKEN, json={"name": "mine", **body(("mock", "echo", None))})
    assert status == 403 and err["error_code"] == "PERMISSION_DENIED"
    assert (await call(first, "DELETE", "/api/2.0/serving-endpoints/nope"))[0] == 404
    assert (await call(first, "PUT", "/api/2.0/serving-endpoints/seeded", TOKEN, json=body(("mock", "echo", None))))[0] == 403


async def test_permissions_api_and_can_manage(workers):
    first, _ = workers
    acl = {"access_control_list": [{"group_name": "ml", "permission_level": "CAN_QUERY"},
                                   {"user_name": "bob@example.com", "permission_level": "CAN_MANAGE"}]}
    status, got = await call(first, "PUT", "/api/2.0/permissions/serving-endpoints/seeded", json=acl)
    assert status == 200 and got["access_control_list"] == acl["access_control_list"]
    assert (await chat(first, "seeded", TOKEN))[0] == 200  # alice, through group ml
    assert (await chat(first, "seeded", OTHER_TOKEN))[0] == 200  # bob, CAN_MANAGE includes querying
    # bob may now manage it: cut alice's group out.
    status, _ = await call(first, "PUT", "/api/2.0/permissions/serving-endpoints/seeded", OTHER_TOKEN,
                           json={"access_control_list": [acl["access_control_list"][1]]})
    assert status == 200
    assert (await chat(first, "seeded", TOKEN))[0] == 403
    assert (await call(first, "GET", "/api/2.0/permissions/serving-endpoints/seeded", TOKEN))[0] == 403


async def test_ai_gateway_rate_limits_and_fallback_switch(workers):
    first, _ = workers
    await call(first, "POST", "/api/2.0/serving-endpoints",
               json={"name": "guarded", **body(("mock", "error-503", None), fallbacks=(("mock", "echo"),))})
    assert (await chat(first, "guarded"))[0] == 200  # the fallback answers
    status, got = await call(first, "PUT", "/api/2.0/serving-endpoints/guarded/ai-gateway", json={
        "rate_limits": [{"key": "user", "calls": 1, "renewal_period": "minute"}], "fallback_config": {"enabled": False}})
    assert status == 200 and got["ai_gateway"]["rate_limits"][0]["calls"] == 1
    assert got["ai_gateway"]["fallback_config"] == {"enabled": False}
    assert (await chat(first, "guarded"))[0] == 503  # no fallback any more
    assert (await chat(first, "guarded"))[0] == 429
    # Switching fallbacks back on restores the list the endpoint had.
    status, got = await call(first, "PUT", "/api/2.0/serving-endpoints/guarded/ai-gateway",
                             json={"rate_limits": [], "fallback_config": {"enabled": True}})
    assert status == 200 and got["ai_gateway"]["fallback_config"] == {"enabled": True}
    assert got["config"]["fallbacks"] == [{"external_model": {"provider": "mock", "name": "echo"}}]
    assert (await chat(first, "guarded"))[0] == 200


@pytest.mark.parametrize("rule,message", [
    ({"key": "user", "calls": 1, "renewal_period": "day"}, "Invalid enum value 'day' - at `$.rate_limits[0].renewal_period`"),
    ({"key": "user", "calls": 0}, "Expected `int` >= 1 - at `$.rate_limits[0].calls`"),
    ({"key": "user"}, "a rate limit needs calls, tokens or both"),
    ({"key": "request_tag", "calls": 1}, "a request_tag limit needs request_tag_key"),
    ({"key": "colour", "calls": 1}, "rate_limits[0].key: one of endpoint, group, request_tag"),
])
async def test_a_bad_rate_limit_is_refused_in_the_bodys_own_words(workers, rule, message):
    first, _ = workers
    status, err = await call(first, "PUT", "/api/2.0/serving-endpoints/seeded/ai-gateway", json={"rate_limits": [rule]})
    assert status == 400 and err["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in err["message"]


async def test_hourly_and_request_tag_limits_through_the_admin_api(workers):
    first, _ = workers
    limits = [{"key": "user", "calls": 2, "renewal_period": "hour"},
              {"key": "request_tag", "request_tag_key": "team", "calls": 1}]
    status, got = await call(first, "PUT", "/api/2.0/serving-endpoints/seeded/ai-gateway", json={"rate_limits": limits})
    assert status == 200 and got["ai_gateway"]["rate_limits"] == [
        {"key": "user", "calls": 2, "renewal_period": "hour"},
        {"key": "request_tag", "calls": 1, "renewal_period": "minute", "request_tag_key": "team"},
    ]

    async def tagged(team: str | None) -> tuple[int, dict]:  # type: ignore[type-arg]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if team:
            headers["Databricks-Ai-Gateway-Request-Tags"] = f'{{"team": "{team}"}}'
        async with aiohttp.ClientSession() as s:
            async with s.post(first.url("/v1/chat/completions"), headers=headers,
                              json={"model": "seeded", "messages": [{"role": "user", "content": "hi"}]}) as r:
                return r.status, await r.json()

    assert (await tagged("search"))[0] == 200
    status, err = await tagged("search")  # team=search has had its one request this minute
    assert status == 429 and "1 requests per minute for request tag team=search" in err["error"]["message"]
    assert (await tagged("ads"))[0] == 200  # another value, another bucket; alice's second request this hour
    status, err = await tagged(None)
    assert status == 429 and "2 requests per hour for user alice@example.com (per-user default)" in err["error"]["message"]


async def test_users_and_service_principals_are_separate_namespaces(workers):
    first, _ = workers
    tokens = {}
    for kind in ("user", "service_principal"):
        status, created = await call(first, "POST", "/api/2.0/token-management/tokens",
                                     json={"principal": "ci-bot", "kind": kind})
        assert status == 200 and created["token_info"]["kind"] == kind
        tokens[kind] = created["token_value"]
    acl = {"access_control_list": [{"service_principal_name": "ci-bot", "permission_level": "CAN_QUERY"}]}
    status, got = await call(first, "PUT", "/api/2.0/permissions/serving-endpoints/seeded", json=acl)
    assert status == 200 and got["access_control_list"] == acl["access_control_list"]
    assert (await chat(first, "seeded", tokens["service_principal"]))[0] == 200
    status, err = await chat(first, "seeded", tokens["user"])  # the user of the same name is not granted
    assert status == 403 and "ci-bot may not query endpoint 'seeded'" in err["error"]["message"]
    # Rate limits tell them apart too.
    await call(first, "PUT", "/api/2.0/permissions/serving-endpoints/seeded", json={"access_control_list": []})
    await call(first, "PUT", "/api/2.0/serving-endpoints/seeded/ai-gateway",
               json={"rate_limits": [{"key": "service_principal", "principal": "ci-bot", "calls": 1}]})
    assert [(await chat(first, "seeded", tokens["service_principal"]))[0] for _ in range(2)] == [200, 429]
    assert [(await chat(first, "seeded", tokens["user"]))[0] for _ in range(2)] == [200, 200]


@pytest.mark.parametrize("lifetime", [0, -5])
async def test_a_token_lifetime_must_be_positive(workers, lifetime):
    first, _ = workers
    status, err = await call(first, "POST", "/api/2.0/token-management/tokens",
                             json={"principal": "svc", "lifetime_seconds": lifetime})
    assert status == 400 and "lifetime_seconds" in err["message"]


async def test_tokens_through_the_admin_api(workers):
    first, second = workers
    status, created = await call(first, "POST", "/api/2.0/token-management/tokens",
                                 json={"principal": "svc-batch", "groups": ["ml"], "lifetime_seconds": 3600})
    assert status == 200 and created["token_info"]["owner"] == "svc-batch"
    secret, token_id = created["token_value"], created["token_info"]["token_id"]
    assert (await chat(first, "seeded", secret))[0] == 200
    await second.app[STORE_REFRESHER].load()
    assert (await chat(second, "seeded", secret))[0] == 200
    status, listed = await call(first, "GET", "/api/2.0/token-management/tokens")
    assert [t["token_id"] for t in listed["token_infos"]] == [token_id] and secret not in str(listed)
    assert (await call(first, "GET", "/api/2.0/token-management/tokens", TOKEN))[0] == 403
    assert (await call(first, "DELETE", f"/api/2.0/token-management/tokens/{token_id}"))[0] == 200
    assert (await chat(first, "seeded", secret))[0] == 401
    await second.app[STORE_REFRESHER].load()
    assert (await chat(second, "seeded", secret))[0] == 401
    assert (await call(first, "DELETE", f"/api/2.0/token-management/tokens/{token_id}"))[0] == 404


async def test_unknown_ai_gateway_fields_are_refused_not_ignored(workers):
    first, _ = workers
    status, err = await call(first, "PUT", "/api/2.0/serving-endpoints/seeded/ai-gateway", json={"colour": "red"})
    assert status == 400 and "colour" in err["message"]
    status, _ = await call(first, "PUT", "/api/2.0/serving-endpoints/seeded/ai-gateway",
                           json={"usage_tracking_config": {"enabled": True}})
    assert status == 200


async def test_an_endpoint_dropped_from_the_file_is_gone_after_a_restart_but_api_ones_stay(make_gateway):
    two = [*SEED, {"name": "retired", "served_entities": [{"provider": "mock", "model": "echo"}]}]
    first = await make_gateway(PROVIDERS, two, tokens=TOKENS)
    await call(first, "POST", "/api/2.0/serving-endpoints", json={"name": "made-by-api", **body(("mock", "echo", None))})
    assert (await chat(first, "retired"))[0] == 200
    restarted = await make_gateway(PROVIDERS, SEED, tokens=TOKENS)  # the same store, a file without "retired"
    assert (await chat(restarted, "retired"))[0] == 404
    assert (await chat(restarted, "made-by-api"))[0] == 200 and (await chat(restarted, "seeded"))[0] == 200


async def test_an_endpoints_table_from_before_the_source_column_is_migrated(make_gateway, tmp_path):
    import sqlite3

    conn = sqlite3.connect(tmp_path / "usage.db")
    with conn:
        conn.execute("CREATE TABLE endpoints (name TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at REAL NOT NULL)")
        conn.execute("INSERT INTO endpoints VALUES ('old', ?, 1.0)",
                     ('{"name": "old", "served_entities": [{"provider": "mock", "model": "echo"}]}',))
    conn.close()
    gw = await make_gateway(PROVIDERS, SEED, tokens=TOKENS)
    assert (await chat(gw, "old"))[0] == 200 and (await chat(gw, "seeded"))[0] == 200
