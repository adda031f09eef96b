"""The Lua scripts behind RedisLimiter; each runs atomically on the Redis server.

They repeat ``budget`` and ``memory._pick`` step for step, so both backends decide
alike. Time comes in as ``ARGV[1]`` (milliseconds from the limiter's clock), not from
Redis, so tests can move it. A bucket is a hash {t: tokens, ts: ms}; a missing key is a
full bucket, and each write sets the key to expire once it would have refilled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

_BUCKET = """
local now = tonumber(ARGV[1])

local function level(key, cap, period)
  local state = redis.call('HMGET', key, 't', 'ts')
  local tokens, ts = tonumber(state[1]), tonumber(state[2])
  if not tokens then return cap, now end
  return math.min(cap, tokens + math.max(0, now - ts) * cap / period), math.max(ts, now)
end

local function store(key, tokens, ts, cap, period)
  redis.call('HSET', key, 't', tokens, 'ts', ts)
  redis.call('PEXPIRE', key, math.ceil((cap - tokens) * period / cap) + 1000)
end

local function wait_ms(tokens, need, cap, period)
  if tokens >= need then return 0 end
  return math.ceil((need - tokens) * period / cap)
end
"""

# KEYS: per check, its QPM key then its TPM key.
# ARGV: now, then per check: alternative (1/0), qpm (0 = none), tpm (0 = none), token cost, period ms.
# Returns {1, index of the charged alternative or 0} or {0, wait ms, index of the refusing check, 'qpm'|'tpm'}.
ACQUIRE_LUA = _BUCKET + """
local probes, refusal, chosen, soonest = {}, nil, nil, nil
for i = 1, #KEYS / 2 do
  local b = 1 + (i - 1) * 5
  local p = {alt = ARGV[b + 1] == '1', qcap = tonumber(ARGV[b + 2]), tcap = tonumber(ARGV[b + 3]),
             cost = tonumber(ARGV[b + 4]), period = tonumber(ARGV[b + 5]), wait = 0, kind = 'qpm'}
  if p.qcap > 0 then
    p.q, p.qts = level(KEYS[2 * i - 1], p.qcap, p.period)
    p.wait = wait_ms(p.q, 1, p.qcap, p.period)
  end
  if p.tcap > 0 then
    p.t, p.tts = level(KEYS[2 * i], p.tcap, p.period)
    local w = wait_ms(p.t, p.cost, p.tcap, p.period)
    if w > p.wait then p.wait, p.kind = w, 'tpm' end
  end
  probes[i] = p
  if p.alt then
    if p.wait == 0 then
      chosen = chosen or i
    elseif soonest == nil or p.wait < probes[soonest].wait then
      soonest = i
    end
  elseif p.wait > 0 and (refusal == nil or p.wait > probes[refusal].wait) then
    refusal = i
  end
end
if chosen == nil and soonest ~= nil and (refusal == nil or probes[soonest].wait > probes[refusal].wait) then
  refusal = soonest
end
if refusal then
  return {0, probes[refusal].wait, refusal, probes[refusal].kind}
end
for i, p in ipairs(probes) do
  if not p.alt or i == chosen then
    if p.qcap > 0 then store(KEYS[2 * i - 1], p.q - 1, p.qts, p.qcap, p.period) end
    if p.tcap > 0 then store(KEYS[2 * i], p.t - p.cost, p.tts, p.tcap, p.period) end
  end
end
return {1, chosen or 0}
"""

# KEYS: TPM keys. ARGV: now, then per key: capacity, period ms, tokens to give back (negative charges).
SETTLE_LUA = _BUCKET + """
for i, key in ipairs(KEYS) do
  local b = 1 + (i - 1) * 3
  local cap, period, delta = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local tokens, ts = level(key, cap, period)
  store(key, math.min(cap, tokens + delta), ts, cap, period)
end
return #KEYS
"""


class Script:
    """A Lua script run with EVALSHA: the source crosses the network only on NOSCRIPT."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(self, client: Redis, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        """Run on ``client``; load the script first if the server lacks it (restart, SCRIPT FLUSH)."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
        except NoScriptError:
            await client.script_load(self.source)  # type: ignore[misc]
            return await client.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]


ACQUIRE = Script(ACQUIRE_LUA)
SETTLE = Script(SETTLE_LUA)
