"""Lua, part 2: events and their delivery, finding a partner, pairing, re-queueing.

The same rules as :mod:`sfu.pairing.matchmaker`, step for step (see its docstring): searching by
common interests (overdue waiters first, then most in common, a shared language, longest waiting),
then by language (longest waiting), then anyone (a random choice: the whole open pool shuffled when
small, else ``SCAN_LIMIT`` random draws); at most ``BUCKET_SCAN`` people read per queue.

Where the pool is shared, "anyone" prefers someone served by the searcher's own process: their media
then need not cross between processes, and since the kernel (``SO_REUSEPORT``) or a load balancer
spreads visitors over processes at random, someone from one's own process is as random a stranger
as anyone's. Only among the candidates drawn, and not against someone who has already waited
:data:`LOCAL_PATIENCE` seconds, so nobody waits long for being served by a quiet process.

Events are recorded as they happen; :func:`finish` numbers the operation (``ops`` counter: every
operation gets the next number, so numbers give the order in which the pool applied them), appends
one entry to the inbox stream of each process serving someone its events concern (fields ``n`` op
number, ``t`` time, ``op`` cause, ``ev`` the events for that process, see :func:`finish`), and returns
``{op number, candidates read, now, clock skew, {kind, a, b, common, basis}...}``.

Separators are the control bytes 0x1d, 0x1e and 0x1f, which ids and normalised interests never hold.
``common`` is returned unsorted (Lua compares strings by locale): the reader sorts it.
"""

#: Seconds after which a waiting person is taken by the first searcher who draws them, whichever
#: process serves either.
LOCAL_PATIENCE = 1.0

SEARCH = r"""
local EVENTS = {}
local LOCAL_PATIENCE = %LOCAL_PATIENCE%

-- An event about a (and b), records of people Redis knows: delivered to their owners' processes.
local function emit(kind, a, b, common, basis)
  EVENTS[#EVENTS + 1] = {kind, a, b, common or '', basis or ''}
end

-- Each process gets one inbox entry per operation: its events, in order, each with its place among
-- all the operation's events: "kind US a US b US basis US index US common" joined by RS.
local function finish(op)
  local n = redis.call('INCR', P .. 'ops')
  local out = {n, READS, NOW_TEXT, fmt(SKEW)}
  local inboxes, order = {}, {}
  local function deliver(process, line)
    if not inboxes[process] then
      inboxes[process] = {}
      order[#order + 1] = process
    end
    local lines = inboxes[process]
    lines[#lines + 1] = line
  end
  for i, e in ipairs(EVENTS) do
    local a, b = e[2], e[3]
    local bwho = b and b.who or ''
    local line = table.concat({e[1], a.who, bwho, e[5], i, e[4]}, SEP)
    deliver(a.o, line)
    if b and b.o ~= a.o then deliver(b.o, line) end
    out[#out + 1] = {e[1], a.who, bwho, e[4], e[5]}
  end
  for _, process in ipairs(order) do
    redis.call('XADD', P .. 'inbox:' .. process, 'MAXLEN', '~', MAXLEN, '*',
      'n', n, 't', NOW_TEXT, 'op', op, 'ev', table.concat(inboxes[process], '\30'))
  end
  return out
end

-- -- what two people have in common --------------------------------------------------------------
local function describe(a, b)
  local common = {}
  for _, tag in ipairs(a.interests) do
    if b.iset[tag] then common[#common + 1] = tag end
  end
  if #common > 0 then return 'interest', common end
  for _, language in ipairs(a.languages) do
    if b.lset[language] then return 'language', common end
  end
  return 'any', common
end

-- How a and b may be paired now (basis, common), or nil when one of them would refuse.
local function match(a, b)
  if apart(a.who, b.who) then return nil end
  local basis, common = describe(a, b)
  local lower = math.min(a.stage, b.stage)
  if basis == 'interest' or lower >= 2 then return basis, common end
  if basis == 'language' and lower >= 1 then return basis, common end
  return nil
end

-- -- finding a partner ---------------------------------------------------------------------------
-- Higher is better: overdue waiters first (oldest first), then overlap, a shared language, age.
local function rank(s, c)
  if NOW - c.since >= INTEREST_WAIT then return {1, -c.seq, 0, 0} end
  local overlap = 0
  for _, tag in ipairs(s.interests) do
    if c.iset[tag] then overlap = overlap + 1 end
  end
  local shared = 0
  for _, language in ipairs(s.languages) do
    if c.lset[language] then shared = 1 break end
  end
  return {0, overlap, shared, -c.seq}
end

local function better(x, y)
  for k = 1, 4 do
    if x[k] ~= y[k] then return x[k] > y[k] end
  end
  return false
end

local function by_interest(s)
  local best, best_rank = nil, nil
  local seen = {}
  for _, tag in ipairs(s.interests) do
    for _, who in ipairs(redis.call('ZRANGE', P .. 'int:' .. tag, 0, BUCKET_SCAN - 1)) do
      READS = READS + 1
      if who ~= s.who and not seen[who] then
        seen[who] = true
        if not apart(s.who, who) then
          local c = load(who)
          local r = rank(s, c)
          if best_rank == nil or better(r, best_rank) then best, best_rank = c, r end
        end
      end
    end
  end
  return best
end

local function by_language(s)
  if s.stage < 1 then return nil end
  local best = nil
  for _, language in ipairs(s.languages) do
    local queue = redis.call('ZRANGE', P .. 'lang:' .. language, 0, BUCKET_SCAN - 1, 'WITHSCORES')
    for k = 1, #queue, 2 do
      READS = READS + 1
      local who = queue[k]
      if who ~= s.who and not apart(s.who, who) then
        local seq = tonumber(queue[k + 1])
        if best == nil or seq < best.seq then best = load(who) end
        break -- the first acceptable one is the longest waiting in this queue
      end
    end
  end
  return best
end

-- A random acceptable candidate; served by the searcher's own process if one of them is (or has
-- waited LOCAL_PATIENCE already), else the first one drawn.
local function anyone(s)
  if s.stage < 2 then return nil end
  local candidates
  if redis.call('SCARD', P .. 'open') <= SCAN_LIMIT then
    candidates = redis.call('SMEMBERS', P .. 'open')
    for k = #candidates, 2, -1 do
      local j = random(k)
      candidates[k], candidates[j] = candidates[j], candidates[k]
    end
  else
    candidates = redis.call('SRANDMEMBER', P .. 'open', -SCAN_LIMIT)
  end
  local first = nil
  for _, who in ipairs(candidates) do
    READS = READS + 1
    if who ~= s.who and not apart(s.who, who) then
      local c = load(who)
      if c.o == s.o or NOW - c.since >= LOCAL_PATIENCE then return c end
      first = first or c
    end
  end
  return first
end

local function find_partner(s)
  return by_interest(s) or by_language(s) or anyone(s)
end

-- -- pairs ---------------------------------------------------------------------------------------
-- a found b (a: searching or waiting; b: waiting).
local function pair(a, b, basis, common)
  if a.st == 'w' then pool_remove(a) end
  pool_remove(b)
  redis.call('HSET', pkey(a.who), 'st', 'p', 'pa', b.who)
  redis.call('HSET', pkey(b.who), 'st', 'p', 'pa', a.who)
  a.st, a.pa, b.st, b.pa = 'p', b.who, 'p', a.who
  redis.call('SADD', P .. 'paired', a.who, b.who)
  redis.call('HINCRBY', P .. 'stats', 'by:' .. basis, 1)
  emit('paired', a, b, table.concat(common, '\29'), basis)
end

local function unpair(a, b)
  for _, r in ipairs({a, b}) do
    redis.call('HSET', pkey(r.who), 'st', 'i', 'pa', '')
    r.st, r.pa = 'i', nil
  end
  redis.call('SREM', P .. 'paired', a.who, b.who)
end

-- r (idle, current preferences) looks for a partner: paired at once, or admitted to the waiting room.
local function enqueue(r)
  r.since, r.stage = NOW, stage_at(r, NOW, NOW)
  local c = find_partner(r)
  if c then
    pair(r, c, describe(r, c))
    return
  end
  pool_add(r, NOW, r.stage)
  emit('waiting', r)
end

-- r stops waiting, or leaves their partner (who is told and re-queued).
local function detach(r)
  if r.st == 'p' then
    local partner = load(r.pa)
    unpair(r, partner)
    emit('partner_left', partner)
    enqueue(partner)
  elseif r.st == 'w' then
    pool_remove(r)
    redis.call('HSET', pkey(r.who), 'st', 'i')
  end
end
""".replace("%LOCAL_PATIENCE%", repr(LOCAL_PATIENCE))
