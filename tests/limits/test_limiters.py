"""One behaviour table for both limiters: in-process, and Redis shared by two clients.

Time only moves when a test advances the fake clock; the Redis limiter passes it into
its scripts, so refill is tested without sleeping. ``make()`` returns a limiter sharing
buckets with every other one the test made: the same object in memory, a new client on
its own connection pool (as another worker process would have) with Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.errors import RateLimited
from gateway.limits import (
    NO_RESERVATION, LimitChecks, LimitExceeded, Limiter, MemoryLimiter,
)
from gateway.limits.redis_limiter import RedisLimiter
from tests.limits import (
    ALICE, REDIS_URL, FakeClock, checks_for, delete_namespace, new_prefix, passes, require_redis, rules,
)

MakeLimiter = Callable[[], Limiter]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[MakeLimiter]:
    if request.param == "memory":
        shared = MemoryLimiter(clock=clock)
        yield lambda: shared
        return
    await require_redis()
    prefix = new_prefix()
    made: list[RedisLimiter] = []

    def make_redis() -> Limiter:
        made.append(RedisLimiter(REDIS_URL, prefix=prefix, timeout=5.0, clock=clock))
        return made[-1]

    try:
        yield make_redis
    finally:
        for limiter in made:
            await limiter.close()
        await delete_namespace(prefix)


@pytest.fixture
def limiter(make: MakeLimiter) -> Limiter:
    return make()


async def passed(limiter: Limiter, checks: LimitChecks, n: int, tokens: int = 0) -> int:
    return sum([await passes(limiter, checks, tokens) for _ in range(n)])


async def refusal(limiter: Limiter, checks: LimitChecks, tokens: int = 0) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as info:
        await limiter.acquire(checks, tokens)
    return info.value


# -- all at once: exactly the limit passes -------------------------------------------------------

@pytest.mark.parametrize("rule,tokens,limit", [
    ({"key": "user", "principal": ALICE, "qpm": 5}, 0, 5),
    ({"key": "endpoint", "tpm": 1000}, 100, 10),
])
async def test_exactly_the_limit_passes_when_requests_arrive_at_once(
    make: MakeLimiter, rule: dict[str, object], tokens: int, limit: int,
) -> None:
    workers = [make(), make()]
    checks = checks_for(rules(rule))
    results = await asyncio.gather(*(passes(workers[i % 2], checks, tokens) for i in range(4 * limit)))
    assert sum(results) == limit


# -- refill and retry_after ------------------------------------------------------------------

async def test_qpm_refills_one_request_per_sixtieth_of_a_minute(limiter: Limiter, clock: FakeClock) -> None:
    checks = checks_for(rules({"key": "user", "qpm": 6}))
    assert await passed(limiter, checks, 10) == 6
    assert (await refusal(limiter, checks)).retry_after == 10.0
    clock.advance(4)
    assert (await refusal(limiter, checks)).retry_after == 6.0
    clock.advance(5.999)
    assert not await passes(limiter, checks)
    clock.advance(0.001)
    assert await passes(limiter, checks)
    assert not await passes(limiter, checks)
    clock.advance(60)
    assert await passed(limiter, checks, 10) == 6  # a full bucket holds one minute's limit, no more


async def test_an_hourly_limit_refills_over_an_hour(limiter: Limiter, clock: FakeClock) -> None:
    checks = checks_for(rules({"key": "user", "qpm": 6, "renewal_period": "hour"}))
    assert await passed(limiter, checks, 10) == 6
    assert (await refusal(limiter, checks)).retry_after == 600.0
    clock.advance(599)
    assert not await passes(limiter, checks)
    clock.advance(1)
    assert await passes(limiter, checks)
    clock.advance(3600)
    assert await passed(limiter, checks, 10) == 6  # a full bucket holds one hour's limit, no more


async def test_minute_and_hour_buckets_are_separate(limiter: Limiter) -> None:
    per_minute = checks_for(rules({"key": "user", "qpm": 2}))
    per_hour = checks_for(rules({"key": "user", "qpm": 2, "renewal_period": "hour"}))
    assert await passed(limiter, per_minute, 3) == 2
    assert await passed(limiter, per_hour, 3) == 2


async def test_an_hourly_tpm_reservation_settles_in_the_hourly_bucket(limiter: Limiter, clock: FakeClock) -> None:
    checks = checks_for(rules({"key": "user", "principal": ALICE, "tpm": 3600, "renewal_period": "hour"}))
    (await limiter.acquire(checks, 3600)).settle(1800)
    assert await limiter.flush()
    assert await passes(limiter, checks, 1800)
    assert (await refusal(limiter, checks, 60)).retry_after == 60.0  # one token per second
    clock.advance(60)
    assert await passes(limiter, checks, 60)


async def test_tpm_retry_after_is_the_time_until_the_estimate_fits(limiter: Limiter) -> None:
    checks = checks_for(rules({"key": "user", "principal": ALICE, "tpm": 1000}))
    await limiter.acquire(checks, 900)
    refused = await refusal(limiter, checks, 300)
    assert (refused.limit, refused.retry_after) == ("tpm", 12.0)  # 200 tokens at 1000 per minute


@pytest.mark.parametrize("rule,groups,message", [
    ({"key": "user", "principal": ALICE, "qpm": 5}, (),
     f"Rate limit exceeded: 5 requests per minute for user {ALICE} on endpoint team-chat"),
    ({"key": "endpoint", "qpm": 5}, (), "Rate limit exceeded: 5 requests per minute on endpoint team-chat"),
    ({"key": "user", "qpm": 5}, (),
     f"Rate limit exceeded: 5 requests per minute for user {ALICE} (per-user default) on endpoint team-chat"),
    ({"key": "service_principal", "principal": ALICE, "qpm": 5}, (),
     f"Rate limit exceeded: 5 requests per minute for service principal {ALICE} on endpoint team-chat"),
    ({"key": "group", "principal": "ml", "qpm": 5}, ("ml",),
     "Rate limit exceeded: 5 requests per minute for group ml on endpoint team-chat"),
    ({"key": "user", "principal": ALICE, "qpm": 5, "renewal_period": "hour"}, (),
     f"Rate limit exceeded: 5 requests per hour for user {ALICE} on endpoint team-chat"),
])
async def test_a_refusal_names_the_limit(limiter: Limiter, rule: dict[str, object], groups: tuple[str, ...],
                                         message: str) -> None:
    kind = "service_principal" if rule["key"] == "service_principal" else "user"
    checks = checks_for(rules(rule), groups=groups, kind=kind)
    await passed(limiter, checks, 5)
    refused = await refusal(limiter, checks)
    assert isinstance(refused, RateLimited)
    assert (refused.status, refused.code, refused.message) == (429, "rate_limited", message)
    one_request = checks.items[0].period_ms / 5 / 1000  # a fifth of the renewal period
    assert (refused.scope, refused.limit, refused.retry_after) == (checks.items[0].scope, "qpm", one_request)


async def test_a_token_refusal_names_the_token_limit(limiter: Limiter) -> None:
    checks = checks_for(rules({"key": "user", "principal": ALICE, "qpm": 100, "tpm": 1000}))
    await limiter.acquire(checks, 1000)
    refused = await refusal(limiter, checks, 10)
    assert refused.message == f"Rate limit exceeded: 1000 tokens per minute for user {ALICE} on endpoint team-chat"


# -- TPM: reserve the estimate, settle with the real usage -------------------------------------

@pytest.mark.parametrize("actual,left", [(30, 970), (150, 850), (100, 900), (0, 1000)])
async def test_settle_returns_or_charges_the_difference(limiter: Limiter, actual: int, left: int) -> None:
    checks = checks_for(rules({"key": "user", "principal": ALICE, "tpm": 1000}))
    reservation = await limiter.acquire(checks, 100)
    reservation.settle(actual)
    assert await limiter.flush()
    assert await passes(limiter, checks, left)
    assert (await refusal(limiter, checks, 1)).retry_after == 0.06  # exactly empty: one token is 60 ms away


async def test_a_second_settle_is_ignored(limiter: Limiter) -> None:
    checks = checks_for(rules({"key": "user", "principal": ALICE, "tpm": 1000}))
    reservation = await limiter.acquire(checks, 100)
    reservation.settle(0)
    reservation.settle(1000)
    assert await limiter.flush()
    assert await passes(limiter, checks, 1000)


async def test_tokens_charged_past_the_limit_are_a_debt_repaid_by_refill(limiter: Limiter, clock: FakeClock) -> None:
    checks = checks_for(rules({"key": "user", "principal": ALICE, "tpm": 600}))
    (await limiter.acquire(checks, 600)).settle(1200)
    assert await limiter.flush()
    assert (await refusal(limiter, checks, 1)).retry_after == 60.1  # 601 tokens at 10 per second
    clock.advance(60.1)
    assert await passes(limiter, checks, 1)


async def test_an_estimate_above_the_limit_waits_for_a_full_bucket(limiter: Limiter, clock: FakeClock) -> None:
    checks = checks_for(rules({"key": "user", "principal": ALICE, "tpm": 1000}))
    assert await passes(limiter, checks, 5000)
    clock.advance(30)
    assert (await refusal(limiter, checks, 5000)).retry_after == 30.0


async def test_with_qpm_and_tpm_the_stricter_binds(limiter: Limiter) -> None:
    tokens_bind = checks_for(rules({"key": "user", "principal": ALICE, "qpm": 100, "tpm": 1000}))
    assert await passed(limiter, tokens_bind, 5, tokens=400) == 2
    assert (await refusal(limiter, tokens_bind, 400)).limit == "tpm"
    requests_bind = checks_for(rules({"key": "user", "principal": "bob", "qpm": 2, "tpm": 100_000}), "bob")
    assert await passed(limiter, requests_bind, 5, tokens=400) == 2
    assert (await refusal(limiter, requests_bind, 400)).limit == "qpm"


async def test_no_rules_cost_nothing(limiter: Limiter) -> None:
    assert await limiter.acquire(checks_for([]), 10**9) is NO_RESERVATION


# -- precedence (issue 5) ----------------------------------------------------------------------

async def test_a_principals_own_rule_beats_its_groups_and_the_default(limiter: Limiter) -> None:
    rule_list = rules({"key": "user", "principal": ALICE, "qpm": 3}, {"key": "group", "principal": "ml", "qpm": 1},
                      {"key": "user", "qpm": 1})
    assert await passed(limiter, checks_for(rule_list, groups=("ml",)), 5) == 3


async def test_a_group_rule_beats_the_default(limiter: Limiter) -> None:
    rule_list = rules({"key": "group", "principal": "ml", "qpm": 3}, {"key": "user", "qpm": 1})
    assert await passed(limiter, checks_for(rule_list, groups=("ml",)), 5) == 3
    assert await passed(limiter, checks_for(rule_list, "bob"), 5) == 1


async def test_the_default_gives_each_principal_its_own_bucket(limiter: Limiter) -> None:
    rule_list = rules({"key": "user", "qpm": 2})
    assert await passed(limiter, checks_for(rule_list), 5) == 2
    assert await passed(limiter, checks_for(rule_list, "bob"), 5) == 2


async def test_a_group_shares_one_bucket_among_its_members(limiter: Limiter) -> None:
    rule_list = rules({"key": "group", "principal": "ml", "qpm": 3})
    assert await passed(limiter, checks_for(rule_list, groups=("ml",)), 2) == 2
    assert await passed(limiter, checks_for(rule_list, "bob", groups=("ml",)), 5) == 1


async def test_a_member_of_several_groups_is_refused_only_when_all_are_exhausted(
    limiter: Limiter, clock: FakeClock,
) -> None:
    rule_list = rules({"key": "group", "principal": "ml", "qpm": 1}, {"key": "group", "principal": "eng", "qpm": 2})
    checks = checks_for(rule_list, groups=("eng", "ml"))
    assert await passed(limiter, checks, 3) == 3
    clock.advance(20)  # ml has 1/3 of a request back, eng 2/3: eng frees first
    refused = await refusal(limiter, checks)
    assert refused.message == "Rate limit exceeded: 2 requests per minute for group eng on endpoint team-chat"
    assert refused.retry_after == pytest.approx(10.0, abs=0.001)  # waits round up to the millisecond


async def test_the_endpoint_limit_always_applies(limiter: Limiter) -> None:
    rule_list = rules({"key": "endpoint", "qpm": 3}, {"key": "user", "principal": ALICE, "qpm": 100})
    assert await passed(limiter, checks_for(rule_list), 2) == 2
    assert await passed(limiter, checks_for(rule_list, "bob"), 5) == 1
    assert (await refusal(limiter, checks_for(rule_list))).scope == "endpoint"


async def test_a_refused_request_takes_nothing_from_any_bucket(limiter: Limiter) -> None:
    rule_list = rules({"key": "endpoint", "qpm": 10, "tpm": 10_000}, {"key": "user", "principal": ALICE, "qpm": 1},
                      {"key": "group", "principal": "ml", "tpm": 100})
    assert await passed(limiter, checks_for(rule_list), 6, tokens=100) == 1
    bob = checks_for(rule_list, "bob", groups=("ml",))
    assert await passed(limiter, bob, 3, tokens=100) == 1  # the group's 100 tokens
    assert await passed(limiter, checks_for(rule_list, "carol"), 20, tokens=100) == 8  # endpoint: 10 - 2


async def test_settle_adjusts_the_group_that_was_charged(limiter: Limiter) -> None:
    rule_list = rules({"key": "group", "principal": "ml", "tpm": 100}, {"key": "group", "principal": "eng", "tpm": 1000})
    checks = checks_for(rule_list, groups=("ml", "eng"))
    (await limiter.acquire(checks, 80)).settle(10)  # ml: 100 - 80 + 70
    assert await limiter.flush()
    assert await passes(limiter, checks, 90)  # ml, now empty
    assert await passes(limiter, checks, 1000)  # eng
    assert (await refusal(limiter, checks, 1)).retry_after == 0.06  # ml's next token is the soonest


# -- request tags -------------------------------------------------------------------------------

TAG_RULES = rules({"key": "request_tag", "tag_key": "team", "qpm": 2},
                  {"key": "request_tag", "tag_key": "team", "tag_value": "search", "qpm": 5})


async def test_a_tag_rule_gives_each_value_its_own_bucket(limiter: Limiter) -> None:
    assert await passed(limiter, checks_for(TAG_RULES, tags={"team": "ads"}), 4) == 2
    assert await passed(limiter, checks_for(TAG_RULES, "bob", tags={"team": "ads"}), 4) == 0  # shared across callers
    assert await passed(limiter, checks_for(TAG_RULES, tags={"team": "mail"}), 4) == 2


async def test_a_rule_for_one_tag_value_overrides_the_any_value_rule(limiter: Limiter) -> None:
    assert await passed(limiter, checks_for(TAG_RULES, tags={"team": "search"}), 7) == 5
    refused = await refusal(limiter, checks_for(TAG_RULES, tags={"team": "search", "env": "prod"}))
    assert refused.message == "Rate limit exceeded: 5 requests per minute for request tag team=search on endpoint team-chat"
    assert refused.scope == "request_tag"


async def test_requests_without_the_tag_meet_no_tag_limit(limiter: Limiter) -> None:
    assert await passed(limiter, checks_for(TAG_RULES, tags={"env": "prod"}), 10) == 10


async def test_tag_limits_apply_on_top_of_the_callers_own(limiter: Limiter) -> None:
    rule_list = rules({"key": "user", "principal": ALICE, "qpm": 3}, {"key": "request_tag", "tag_key": "team", "qpm": 2})
    assert await passed(limiter, checks_for(rule_list, tags={"team": "ads"}), 3) == 2
    assert await passed(limiter, checks_for(rule_list), 3) == 1  # ALICE's own bucket had 1 left


async def test_endpoints_do_not_share_buckets(limiter: Limiter) -> None:
    rule_list = rules({"key": "endpoint", "qpm": 1}, {"key": "user", "qpm": 1})
    assert await passes(limiter, checks_for(rule_list, endpoint="a"))
    assert await passes(limiter, checks_for(rule_list, endpoint="b"))
    assert not await passes(limiter, checks_for(rule_list, endpoint="a"))


async def test_the_memory_limiter_forgets_buckets_once_they_have_refilled(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock)
    await limiter.acquire(checks_for(rules({"key": "user", "qpm": 60})))
    clock.advance(61)  # refilled in 1 s, swept at most a minute later
    await limiter.acquire(checks_for(rules({"key": "user", "qpm": 60}), "bob"))
    assert limiter.bucket_names == ["q:team-chat:default:bob"]
