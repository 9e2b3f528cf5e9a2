"""Lua, part 1: the arguments every pairing script takes, a person's record, the waiting room, cooldowns.

Every script is this library followed by one operation (:mod:`.lua_ops`), run atomically by Redis.
Keys (all under the prefix ``P``):

- ``p:<who>`` hash: ``o`` owning process, ``st`` state (``i`` idle, ``w`` waiting, ``p`` paired),
  ``pa`` partner (empty when none), ``i``/``l`` interests/languages (joined by the byte 0x1f), ``s`` strict (``1``/``0``),
  and while waiting ``since``, ``stage`` (0 interests only, 1 also a language, 2 anyone), ``seq``
  (arrival order);
- ``waiting``, ``paired``, ``open`` sets: who waits, who is paired, who waits accepting anyone;
- ``int:<tag>``, ``lang:<language>`` sorted sets scored by arrival order: who waits with that
  interest; who waits with that language and already accepts a partner by language;
- ``tl`` sorted set: when each waiting person's stage widens next (member: zero-padded ``seq`` then
  the id, so equal times keep arrival order);
- ``cool:<who>`` hash: other person -> end of their rematch cooldown; ``cools`` sorted set of
  ``a<0x1f>b`` by that end, to end them in order;
- ``seq``, ``ops`` counters; ``stats`` hash (``by:<basis>``: pairs made on that basis);
- ``owned:<process>`` set, ``inbox:<process>`` stream: see :mod:`.lua_ops`.

Numbers are stored with 17 significant digits, so times read back are exactly the times written.

The pool's time never goes back: ``clock`` holds the latest ``now`` any operation used, and a caller
whose ``now`` is behind it by at most ``MAX_SKEW`` seconds (clocks of machines a little apart) acts
at that time instead. Further behind, the caller's time is used as given and the skew reported.
"""

POOL = r"""
local P = ARGV[1]
local NOW_TEXT = ARGV[2]
local NOW = tonumber(NOW_TEXT)
local ME = ARGV[3]
local COOLDOWN = tonumber(ARGV[5])
local INTEREST_WAIT = tonumber(ARGV[6])
local LANGUAGE_WAIT = tonumber(ARGV[7])
local BUDGET = tonumber(ARGV[8])
local BUCKET_SCAN = tonumber(ARGV[9])
local SCAN_LIMIT = tonumber(ARGV[10])
local MAXLEN = ARGV[11]
local REQUEST = ARGV[12]
local SEP = '\31'
local INF = math.huge
local READS = 0
local SKEW = 0

local SEEDED = false
-- A random integer in 1..k, from the caller's seed (reproducible runs; seeded only when needed).
local function random(k)
  if not SEEDED then
    math.randomseed(tonumber(ARGV[4]))
    SEEDED = true
  end
  return math.random(k)
end

local function fmt(x) return string.format('%.17g', x) end

local function split(text)
  local out = {}
  if not text or text == '' then return out end
  for item in string.gmatch(text, '[^\31]+') do out[#out + 1] = item end
  return out
end

local function set_of(list)
  local s = {}
  for _, x in ipairs(list) do s[x] = true end
  return s
end

local function pkey(who) return P .. 'p:' .. who end

local function set_prefs(r, interests, languages, strict)
  r.i, r.l, r.s = interests, languages, strict
  r.interests, r.languages, r.strict = split(interests), split(languages), strict == '1'
  r.iset, r.lset = set_of(r.interests), set_of(r.languages)
end

-- A person's record, or nil when Redis knows nothing of them.
local function load(who)
  local v = redis.call('HMGET', pkey(who), 'o', 'st', 'pa', 'i', 'l', 's', 'since', 'stage', 'seq')
  if not v[1] then return nil end
  local r = {
    who = who, o = v[1], st = v[2] or 'i', pa = (v[3] and v[3] ~= '') and v[3] or nil,
    since = tonumber(v[7] or '0') or 0, stage = tonumber(v[8] or '0') or 0, seq = tonumber(v[9] or '0') or 0,
  }
  set_prefs(r, v[4] or '', v[5] or '', v[6] or '0')
  return r
end

-- -- stages --------------------------------------------------------------------------------------
local function opens_at(r, since)
  if r.strict and #r.interests > 0 then return INF, INF end
  local iw = (#r.interests > 0) and INTEREST_WAIT or 0
  local lw = (#r.languages > 0) and LANGUAGE_WAIT or 0
  return since + iw, since + math.max(iw, lw)
end

local function stage_at(r, since, now)
  local to_language, to_any = opens_at(r, since)
  if now >= to_any then return 2 end
  if now >= to_language then return 1 end
  return 0
end

local function timeline_member(r) return string.format('%015d', r.seq) .. r.who end

-- Note when r's stage widens next (nothing once they accept anyone, or if it never widens).
local function schedule(r)
  if r.stage >= 2 then return end
  local to_language, to_any = opens_at(r, r.since)
  local at = (r.stage < 1) and to_language or to_any
  if at < INF then redis.call('ZADD', P .. 'tl', fmt(at), timeline_member(r)) end
end

-- -- the waiting room ----------------------------------------------------------------------------
local function index_stage(r, old, new)
  if old < 1 and new >= 1 then
    for _, language in ipairs(r.languages) do redis.call('ZADD', P .. 'lang:' .. language, r.seq, r.who) end
  end
  if old < 2 and new >= 2 then redis.call('SADD', P .. 'open', r.who) end
end

local function pool_add(r, since, stage)
  r.seq = redis.call('INCR', P .. 'seq')
  r.since, r.stage, r.st = since, stage, 'w'
  redis.call('HSET', pkey(r.who), 'st', 'w', 'since', fmt(since), 'stage', stage, 'seq', r.seq)
  redis.call('SADD', P .. 'waiting', r.who)
  for _, tag in ipairs(r.interests) do redis.call('ZADD', P .. 'int:' .. tag, r.seq, r.who) end
  index_stage(r, -1, stage)
  schedule(r)
end

-- Out of every queue; r must describe them as they were admitted (their preferences then). Their
-- record's state is left to the caller, who always sets it next (or deletes the record).
local function pool_remove(r)
  redis.call('SREM', P .. 'waiting', r.who)
  for _, tag in ipairs(r.interests) do redis.call('ZREM', P .. 'int:' .. tag, r.who) end
  if r.stage >= 1 then
    for _, language in ipairs(r.languages) do redis.call('ZREM', P .. 'lang:' .. language, r.who) end
  end
  if r.stage >= 2 then redis.call('SREM', P .. 'open', r.who) end
  redis.call('ZREM', P .. 'tl', timeline_member(r))
  r.st = 'i'
end

local function promote(r, stage)
  if stage > r.stage then
    index_stage(r, r.stage, stage)
    r.stage = stage
    redis.call('HSET', pkey(r.who), 'stage', stage)
  end
end

-- -- rematch cooldowns ---------------------------------------------------------------------------
local function apart(a, b)
  local till = redis.call('HGET', P .. 'cool:' .. a, b)
  return till and tonumber(till) > NOW
end

local function cooldown_add(a, b, till)
  local text = fmt(till)
  redis.call('HSET', P .. 'cool:' .. a, b, text)
  redis.call('HSET', P .. 'cool:' .. b, a, text)
  redis.call('ZREM', P .. 'cools', b .. SEP .. a)
  redis.call('ZADD', P .. 'cools', text, a .. SEP .. b)
end

-- The pairs whose cooldown is over by now (at most BUDGET), forgotten; in the order they ended.
local function cooldowns_ended()
  local members = redis.call('ZRANGEBYSCORE', P .. 'cools', '-inf', NOW_TEXT, 'LIMIT', 0, BUDGET)
  local ended = {}
  for _, member in ipairs(members) do
    local pair = split(member)
    redis.call('ZREM', P .. 'cools', member)
    redis.call('HDEL', P .. 'cool:' .. pair[1], pair[2])
    redis.call('HDEL', P .. 'cool:' .. pair[2], pair[1])
    ended[#ended + 1] = pair
  end
  return ended
end
"""
