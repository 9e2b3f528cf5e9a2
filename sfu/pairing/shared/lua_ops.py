"""Lua, part 3: one script per operation, each the library (:mod:`.lua_pool`, :mod:`.lua_search`)
followed by its body. Redis runs a script atomically: nobody is paired twice or lost whatever other
processes do at the same time.

Arguments: ``ARGV[1..12]`` are common (prefix, now, calling process, random seed, rematch cooldown,
interest wait, language wait, budget, bucket scan, scan limit, inbox length cap, request id); then
per operation ``who`` and, for start/next, ``has preferences``, interests, languages, strict.

Each call is idempotent: its reply is kept for a minute under ``req:<request id>``, and the same
request again returns it without doing anything, so a client may safely retry a call whose reply
was lost with the connection.

Ownership: the first start/next/stop for someone makes the calling process their owner (``o``,
``owned:<process>``); any other process asking for them gets a ``NOT_OWNER`` error, returned before
anything is written. ``leave`` forgets them.

Processes: ``proc:<process>`` (a key with a time to live, renewed by each heartbeat) and the
``procs`` set. A sweep removes the people of every process whose key has expired: first out of the
waiting room, then out of their pairs (partners served by live processes are told and re-queued),
then their records, the process's inbox and its entry.
"""

from .lua_pool import POOL
from .lua_search import SEARCH

#: Seconds a caller's clock may be behind the pool's before its own time is used (see :mod:`.lua_pool`).
MAX_SKEW = 0.5

_OWNERSHIP = r"""
local function done(reply)
  redis.call('SET', P .. 'req:' .. REQUEST, cjson.encode(reply), 'EX', 60)
  return reply
end

local function claim(who)
  local r = load(who)
  if r == nil then
    redis.call('HSET', pkey(who), 'o', ME, 'st', 'i', 'i', '', 'l', '', 's', '0')
    redis.call('SADD', P .. 'owned:' .. ME, who)
    return load(who)
  end
  if r.o ~= ME then return nil end
  return r
end

local function not_owner(who)
  return redis.error_reply('NOT_OWNER ' .. who .. ' is served by another process')
end
"""

_SEARCH_AGAIN = r"""
local WHO = ARGV[13]
local HAS_PREFS = ARGV[14] == '1'

local function prefs_changed(r)
  return HAS_PREFS and (ARGV[15] ~= r.i or ARGV[16] ~= r.l or ARGV[17] ~= r.s)
end

local function save_prefs(r)
  redis.call('HSET', pkey(r.who), 'i', ARGV[15], 'l', ARGV[16], 's', ARGV[17])
  set_prefs(r, ARGV[15], ARGV[16], ARGV[17])
end

-- Start: a no-op when paired (new preferences apply from the next search) or waiting unchanged.
local function start(r, changed)
  if r.st == 'p' then
    if changed then save_prefs(r) end
    return
  end
  if r.st == 'w' then
    if not changed then
      emit('waiting', r)
      return
    end
    pool_remove(r)
  end
  if changed then save_prefs(r) end
  enqueue(r)
end
"""

_START = r"""
local r = claim(WHO)
if not r then return not_owner(WHO) end
start(r, prefs_changed(r))
return done(finish('start'))
"""

_NEXT = r"""
local r = claim(WHO)
if not r then return not_owner(WHO) end
local changed = prefs_changed(r)
if r.st ~= 'p' then
  start(r, changed)
  return done(finish('next'))
end
if changed then save_prefs(r) end
local partner = load(r.pa)
unpair(r, partner)
cooldown_add(r.who, partner.who, NOW + COOLDOWN)
emit('partner_left', partner)
enqueue(partner)
if r.st == 'i' then enqueue(r) end
return done(finish('next'))
"""

_STOP = r"""
local WHO = ARGV[13]
local r = claim(WHO)
if not r then return not_owner(WHO) end
detach(r)
emit('idle', r)
return done(finish('stop'))
"""

_LEAVE = r"""
local WHO = ARGV[13]
local r = load(WHO)
if r == nil then return done(finish('leave')) end
if r.o ~= ME then return not_owner(WHO) end
detach(r)
redis.call('DEL', pkey(WHO))
redis.call('SREM', P .. 'owned:' .. ME, WHO)
return done(finish('leave'))
"""

_EXPIRE = r"""
for _, ended in ipairs(cooldowns_ended()) do
  local a, b = load(ended[1]), load(ended[2])
  if a and b and a.st == 'w' and b.st == 'w' then
    local basis, common = match(a, b)
    if basis then pair(a, b, basis, common) end
  end
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', P .. 'tl', '-inf', NOW_TEXT, 'LIMIT', 0, BUDGET)) do
  redis.call('ZREM', P .. 'tl', member)
  local r = load(string.sub(member, 16))
  if r and r.st == 'w' then
    local stage = stage_at(r, r.since, NOW)
    local widened = stage > r.stage
    promote(r, stage)
    schedule(r)
    if widened then
      local c = find_partner(r)
      if c then pair(r, c, describe(r, c)) end
    end
  end
end
return done(finish('expire'))
"""

_SWEEP = r"""
local function alive(process) return redis.call('EXISTS', P .. 'proc:' .. process) == 1 end

local swept = {}
for _, process in ipairs(redis.call('SMEMBERS', P .. 'procs')) do
  if not alive(process) then
    local people = {}
    for _, who in ipairs(redis.call('SMEMBERS', P .. 'owned:' .. process)) do
      local r = load(who)
      if r then
        people[#people + 1] = who
        if r.st == 'w' then pool_remove(r) end
      end
    end
    for _, who in ipairs(people) do
      local r = load(who)
      if r.st == 'p' then
        local partner = load(r.pa)
        unpair(r, partner)
        if alive(partner.o) then
          emit('partner_left', partner)
          enqueue(partner)
        end
      end
      redis.call('DEL', pkey(who))
    end
    redis.call('DEL', P .. 'owned:' .. process, P .. 'inbox:' .. process)
    redis.call('SREM', P .. 'procs', process)
    swept[#swept + 1] = process
    swept[#swept + 1] = #people
  end
end
return done({finish('sweep'), swept})
"""

HEARTBEAT = r"""
local P, ME = ARGV[1], ARGV[2]
local known = redis.call('SISMEMBER', P .. 'procs', ME)
redis.call('SET', P .. 'proc:' .. ME, ARGV[5], 'PX', ARGV[3])
redis.call('SADD', P .. 'procs', ME)
local generation = redis.call('GET', P .. 'gen')
if not generation then
  generation = ARGV[4]
  redis.call('SET', P .. 'gen', generation)
end
return {generation, known}
"""

RETIRE = r"""
redis.call('DEL', ARGV[1] .. 'proc:' .. ARGV[2])
return 1
"""

_REPLAY = r"""
local replay, latest = unpack(redis.call('MGET', P .. 'req:' .. REQUEST, P .. 'clock'))
if replay then return cjson.decode(replay) end
if latest and tonumber(latest) > NOW then
  SKEW = tonumber(latest) - NOW
  if SKEW <= %(max_skew)r then NOW, NOW_TEXT = tonumber(latest), latest end
else
  redis.call('SET', P .. 'clock', NOW_TEXT)
end
""" % {"max_skew": MAX_SKEW}

_LIBRARY = POOL + SEARCH + _OWNERSHIP + _REPLAY

START = _LIBRARY + _SEARCH_AGAIN + _START
NEXT = _LIBRARY + _SEARCH_AGAIN + _NEXT
STOP = _LIBRARY + _STOP
LEAVE = _LIBRARY + _LEAVE
EXPIRE = _LIBRARY + _EXPIRE
SWEEP = _LIBRARY + _SWEEP
