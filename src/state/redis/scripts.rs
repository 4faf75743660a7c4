//! The Lua scripts Redis runs atomically. Money arguments and values are non-negative
//! picodollar amounts as decimal strings, added in two limbs of 12 digits (see the module docs
//! of [`super`]).

/// Limb arithmetic on picodollar strings, shared by the money scripts.
const LIMBS: &str = r"
local E = 1000000000000
local function limbs(s)
  s = s or '0'
  local n = #s
  if n <= 12 then return {0, tonumber(s)} end
  return {tonumber(string.sub(s, 1, n - 12)), tonumber(string.sub(s, n - 11))}
end
local function add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= E then lo = lo - E; hi = hi + 1 end
  return {hi, lo}
end
local function sub(a, b)
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then lo = lo + E; hi = hi - 1 end
  if hi < 0 then return {0, 0} end
  return {hi, lo}
end
local function gt(a, b) return a[1] > b[1] or (a[1] == b[1] and a[2] > b[2]) end
local function str(a)
  if a[1] == 0 then return string.format('%d', a[2]) end
  return string.format('%d%012d', a[1], a[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Admits one request: per-minute limits, then the credit hold.
///
/// KEYS: spend, holds, rate. ARGV: limit (`''` = unlimited), amount, seed spend (the
/// instance's own count, used only when Redis has none), spend TTL s (0 = none), hold id,
/// hold TTL ms, rpm (`''`), tpm (`''`), window ms.
///
/// Returns `{'ok'}`, `{'rate', kind, limit, reset_in_ms, reset_at_ms}` or
/// `{'credit', remaining}`.
const ADMIT: &str = r"
local limit, amount, seed = ARGV[1], ARGV[2], ARGV[3]
local spend_ttl, hold_ttl = tonumber(ARGV[4]), tonumber(ARGV[6])
local rpm, tpm, win = ARGV[7], ARGV[8], tonumber(ARGV[9])
local limited = rpm ~= '' or tpm ~= ''
if limited then
  local cur = tostring(math.floor(now / win))
  local w = redis.call('HGET', KEYS[3], 'w')
  local r, tk = 0, 0
  if w == cur then
    r = tonumber(redis.call('HGET', KEYS[3], 'r') or '0')
    tk = tonumber(redis.call('HGET', KEYS[3], 't') or '0')
  else
    redis.call('HSET', KEYS[3], 'w', cur, 'r', 0, 't', 0)
  end
  local reset_at = (math.floor(now / win) + 1) * win
  if rpm ~= '' and r >= tonumber(rpm) then
    return {'rate', 'rpm', rpm, tostring(reset_at - now), tostring(reset_at)}
  end
  if tpm ~= '' and tk >= tonumber(tpm) then
    return {'rate', 'tpm', tpm, tostring(reset_at - now), tostring(reset_at)}
  end
end
if limit ~= '' then
  local spent = redis.call('GET', KEYS[1])
  if not spent then
    spent = seed
    redis.call('SET', KEYS[1], spent)
    if spend_ttl > 0 then redis.call('EXPIRE', KEYS[1], spend_ttl) end
  end
  local held = {0, 0}
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local amt, exp = string.match(all[i + 1], '^(%d+):(%d+)$')
    if amt == nil or tonumber(exp) <= now then
      redis.call('HDEL', KEYS[2], all[i])
    else
      held = add(held, limbs(amt))
    end
  end
  local used = add(limbs(spent), held)
  if gt(add(used, limbs(amount)), limbs(limit)) then
    return {'credit', str(sub(limbs(limit), used))}
  end
  redis.call('HSET', KEYS[2], ARGV[5], amount .. ':' .. tostring(now + hold_ttl))
  redis.call('PEXPIRE', KEYS[2], hold_ttl)
end
if limited then
  redis.call('HINCRBY', KEYS[3], 'r', 1)
  redis.call('PEXPIRE', KEYS[3], win * 2)
end
return {'ok'}
";

/// Settles a request: drops its hold, adds the actual cost to the spend and its tokens to the
/// minute's.
///
/// KEYS: spend, holds, rate. ARGV: actual, hold id, tokens, window ms, spend TTL s, seed spend.
const SETTLE: &str = r"
local actual, tokens, win = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local spend_ttl = tonumber(ARGV[5])
redis.call('HDEL', KEYS[2], ARGV[2])
if actual ~= '0' then
  local spent = redis.call('GET', KEYS[1]) or ARGV[6]
  redis.call('SET', KEYS[1], str(add(limbs(spent), limbs(actual))))
  if spend_ttl > 0 then redis.call('EXPIRE', KEYS[1], spend_ttl) end
end
if tokens > 0 then
  local cur = tostring(math.floor(now / win))
  if redis.call('HGET', KEYS[3], 'w') == cur then
    redis.call('HINCRBY', KEYS[3], 't', tokens)
  else
    redis.call('HSET', KEYS[3], 'w', cur, 'r', 0, 't', tokens)
  end
  redis.call('PEXPIRE', KEYS[3], win * 2)
end
return 1
";

/// Records one outcome and updates the endpoint's verdicts.
///
/// KEYS: the endpoint's event set, the verdict hash, the endpoint's failure set. ARGV: endpoint,
/// ok (1/0), status, retry-after ms, window ms, min failures, min failure ratio, a unique event
/// id.
///
/// Every event goes into the event set (the last 256 within the window), failures into the
/// failure set as well, so both counts are `ZCARD`s: the script runs once per upstream attempt
/// of every instance, and counting the window member by member cost most of its time.
const HEALTH_RECORD: &str = r"
local ep, ok, status = ARGV[1], ARGV[2], tonumber(ARGV[3])
local win = tonumber(ARGV[5])
redis.call('ZADD', KEYS[1], now, ARGV[8])
if ok == '0' then redis.call('ZADD', KEYS[3], now, ARGV[8]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -257)
redis.call('PEXPIRE', KEYS[1], win)
local total = redis.call('ZCARD', KEYS[1])
local failed = 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  -- Failures older than the oldest event still counted leave the count with it.
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or now
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. oldest)
  redis.call('PEXPIRE', KEYS[3], win)
  failed = redis.call('ZCARD', KEYS[3])
end
if failed >= tonumber(ARGV[6]) and failed >= tonumber(ARGV[7]) * total then
  redis.call('HSET', KEYS[2], 'u:' .. ep, now + win)
elseif ok == '1' then
  redis.call('HDEL', KEYS[2], 'u:' .. ep)
end
if status == 429 then
  local ra = tonumber(ARGV[4])
  local until_ms = tonumber(redis.call('HGET', KEYS[2], 'c:' .. ep) or '0')
  if now + ra > until_ms then redis.call('HSET', KEYS[2], 'c:' .. ep, now + ra) end
end
return 1
";

/// Folds one speed sample into the deployment's EWMAs of an endpoint, kept as
/// `ttft seconds:tokens per second` in the speed hash (for an hour after the last sample).
///
/// KEYS: the speed hash. ARGV: endpoint, ttft s, tokens/s, weight of the new sample.
const HEALTH_SPEED: &str = r"
local ttft, tps, a = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local t, s = string.match(cur, '^([%d.eE+-]+):([%d.eE+-]+)$')
  if t and s then
    ttft = tonumber(t) + a * (ttft - tonumber(t))
    tps = tonumber(s) + a * (tps - tonumber(s))
  end
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.6f:%.3f', ttft, tps))
redis.call('EXPIRE', KEYS[1], 3600)
return 1
";

/// Reads every verdict with Redis's time, and the speed EWMAs. KEYS: the verdict hash, the
/// speed hash. Returns `{now, field, until, …, 's:' .. endpoint, 'ttft:tps', …}` for verdicts
/// still in force (dropping the rest), then the speeds.
const HEALTH_READ: &str = r"
local out = {tostring(now)}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then
    table.insert(out, all[i])
    table.insert(out, all[i + 1])
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
local speeds = redis.call('HGETALL', KEYS[2])
for i = 1, #speeds, 2 do
  table.insert(out, 's:' .. speeds[i])
  table.insert(out, speeds[i + 1])
end
return out
";

/// The scripts, compiled once (loaded into Redis by hash on first use).
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) admit: redis::Script,
    pub(super) settle: redis::Script,
    pub(super) health_record: redis::Script,
    pub(super) health_speed: redis::Script,
    pub(super) health_read: redis::Script,
}

impl Scripts {
    pub(super) fn get() -> &'static Scripts {
        static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
        SCRIPTS.get_or_init(|| Scripts {
            admit: redis::Script::new(&format!("{LIMBS}{ADMIT}")),
            settle: redis::Script::new(&format!("{LIMBS}{SETTLE}")),
            health_record: redis::Script::new(&format!("{LIMBS}{HEALTH_RECORD}")),
            health_speed: redis::Script::new(HEALTH_SPEED),
            health_read: redis::Script::new(&format!("{LIMBS}{HEALTH_READ}")),
        })
    }
}
