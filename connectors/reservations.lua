#!lua name=stockflow
-- The reservation API, as Redis Functions. Every key one call touches shares one hash tag, so
-- on Redis Cluster a call lives in one slot: on one Redis the SKU's ({sku}), on a cluster its
-- slot group's, whose heartbeat and stats copies live there too (connectors/redis_keys.py).
-- The functions read only the keys they are given, so both layouts run the same code.
--
-- Per SKU (on a cluster <p>:{group}:<sku>:avail and so on):
--   <p>:{sku}:avail  hash  channel -> units the engine published as sellable
--   <p>:{sku}:line   hash  channel -> max_line_qty: the most one order line can be promised
--                    (the largest ATP at one node where the channel does not split lines);
--                    never above the channel's avail (publish keeps it so)
--   <p>:{sku}:ck     hash  hold_id -> "channel \t qty \t expires_ms \t granted_ms \t absorbed"
--   <p>:{sku}:ckx    zset  hold_id scored by expires_ms (to drop the expired: begin at every
--                    batch, reserve before it would refuse or meets a hold_id it knows)
--   <p>:{sku}:busy   string, short TTL: the engine is applying a batch of this SKU
--   <p>:{sku}:pos    hash  node -> its position (msgpack: on hand, inbound by kind, holds,
--                    allocations, safety stock, ATP), for operators; reservations never read it
--   <p>:{sku}:pend   units held by checkouts and not yet absorbed by the engine (a running
--                    sum, so a reservation costs the same however many holds are live)
-- Global on one Redis, one copy per slot group on a cluster (<p>:{group}:heartbeat):
--   <p>:heartbeat    ms until which the engine's picture counts as fresh
--   <p>:stats        hash  result -> calls (granted, short, line, stale, busy, badarg), for
--                    metrics (which sum the copies)

-- Redis's clock in ms, as text and as a number. Built from TIME's digits: formatting a Lua
-- number as text costs more than the Redis calls around it (every reserve runs this).
local function clock()
  local t = redis.call('TIME')
  local now_s = t[1] .. string.sub('00000' .. t[2], -6, -4)  -- seconds, then whole ms
  return now_s, now_s + 0
end

local function parse(v)
  local channel, qty, expires, granted, absorbed =
    string.match(v, '^(.-)\t(%d+)\t(%d+)\t(%d+)\t(%d)$')
  return channel, tonumber(qty), tonumber(expires), tonumber(granted), absorbed == '1'
end

-- Forget one hold (`v`, its record in ck); if the engine had not absorbed it, its units leave
-- the pending sum. Returns those units.
local function forget(ck, ckx, pend, hold_id, v)
  local _, qty, _, _, absorbed = parse(v)
  redis.call('HDEL', ck, hold_id)
  redis.call('ZREM', ckx, hold_id)
  if absorbed then return 0 end
  redis.call('DECRBY', pend, qty)
  return qty
end

-- Drop the holds expired at `now_s` (ms, as text); returns the units that left the pending sum.
local function drop_expired(ck, ckx, pend, now_s)
  local freed = 0
  for _, hold_id in ipairs(redis.call('ZRANGEBYSCORE', ckx, '-inf', now_s)) do
    local v = redis.call('HGET', ck, hold_id)
    if v then freed = freed + forget(ck, ckx, pend, hold_id, v) end
  end
  return freed
end

local function refuse(stats, code, message)
  redis.call('HINCRBY', stats, string.lower(code), 1)
  return redis.error_reply('STOCKFLOW_' .. code .. ' ' .. message)
end

-- The rest of a grant once the hold's record is in ck. Numbers go to Redis as text (qty_s,
-- expires_s): Redis formats a Lua number argument with "%.17g", dearer than the call itself.
local function granted(ckx, pend, stats, hold_id, qty_s, expires_s, expires)
  redis.call('ZADD', ckx, expires_s, hold_id)
  redis.call('INCRBY', pend, qty_s)
  redis.call('HINCRBY', stats, 'granted', '1')
  return {'held', hold_id, expires}
end

-- reserve: KEYS avail, line, ck, ckx, busy, pend, heartbeat, stats;
-- ARGV channel, qty, ttl_ms, hold_id
-- -> {"held", hold_id, expires_ms}; errors STOCKFLOW_STALE / _BUSY / _SHORT / _LINE / _BADARG.
-- Expired holds are dropped only when they could change the answer: a grant that fits even
-- with them still counted in the pending sum is the grant it would be without them, so only
-- a refusal (or a hold_id already known) first drops them and decides again. Every other
-- call skips that sweep; begin drops them too, for every batch of the SKU.
local function reserve(keys, args)
  if #keys ~= 8 then  -- a caller of the 7-key v1 signature: its keys would be misread
    return redis.error_reply('STOCKFLOW_BADARG reserve takes 8 keys: avail line ck ckx busy '
      .. 'pend heartbeat stats')
  end
  local avail, line, ck, ckx, busy, pend, heartbeat, stats =
    keys[1], keys[2], keys[3], keys[4], keys[5], keys[6], keys[7], keys[8]
  local channel, qty_s, ttl, hold_id = args[1], args[2], tonumber(args[3]), args[4]
  local plain = string.find(qty_s or '', '^[1-9]%d*$')  -- as Redis reads an integer
  local qty = plain and qty_s + 0 or tonumber(qty_s)
  if not qty or qty <= 0 or qty ~= math.floor(qty) or not ttl or ttl <= 0 or not hold_id
     or hold_id == '' or string.find(channel or '', '\t', 1, true) then
    return refuse(stats, 'BADARG', 'qty and ttl_ms must be positive integers, hold_id not empty')
  end
  if not plain then qty_s = string.format('%d', qty) end  -- "2.0" or "02": Redis wants "2"
  local now_s, now = clock()
  local fresh_until, fenced, pending = unpack(redis.call('MGET', heartbeat, busy, pend))
  if (fresh_until or 0) + 0 < now then
    return refuse(stats, 'STALE', 'the engine heartbeat is stale: not selling against an old picture')
  end
  if fenced then
    return refuse(stats, 'BUSY', 'the engine is applying a batch of this SKU: retry')
  end
  pending = (pending or 0) + 0
  -- Where the channel does not split lines, the hold must fit at one node. The holds not yet
  -- taken in may all land on the largest one, so they count against it; where lines split,
  -- max_line_qty is the availability and this never refuses what SHORT let through. As
  -- max_line_qty <= available (publish keeps it so), a hold that fits in one line fits in all.
  local one_line = (redis.call('HGET', line, channel) or 0) + 0
  local expires = now + ttl
  local expires_s = string.format('%d', expires)
  local record = channel .. '\t' .. qty_s .. '\t' .. expires_s .. '\t' .. now_s .. '\t0'
  if one_line - pending >= qty and redis.call('HSETNX', ck, hold_id, record) == 1 then
    return granted(ckx, pend, stats, hold_id, qty_s, expires_s, expires)
  end
  pending = pending - drop_expired(ck, ckx, pend, now_s)
  local existing = redis.call('HGET', ck, hold_id)
  if existing then  -- a retried call: the same hold
    local _, _, held_until = parse(existing)
    return {'held', hold_id, held_until}
  end
  local sellable = (redis.call('HGET', avail, channel) or 0) + 0
  if sellable - pending < qty then
    return refuse(stats, 'SHORT', math.max(sellable - pending, 0) .. ' available')
  end
  if one_line - pending < qty then
    return refuse(stats, 'LINE', math.max(one_line - pending, 0) .. ' at most in one order line')
  end
  redis.call('HSET', ck, hold_id, record)
  return granted(ckx, pend, stats, hold_id, qty_s, expires_s, expires)
end

-- release: KEYS ck, ckx, pend; ARGV hold_id -> 1 if it was live, else 0 (an expired hold is
-- dropped all the same: reserve may not have swept it yet).
local function release(keys, args)
  local v = redis.call('HGET', keys[1], args[1])
  if not v then return 0 end
  local _, _, expires = parse(v)
  local _, now = clock()
  forget(keys[1], keys[2], keys[3], args[1], v)
  return expires > now and 1 or 0
end

-- begin (engine): KEYS ck, ckx, busy, pend; ARGV busy_ttl_ms
-- Fences the SKU (reserve answers BUSY) and returns its live holds, oldest grant first:
-- {hold_id, channel, qty, expires_ms, ...}.
local function begin(keys, args)
  redis.call('SET', keys[3], '1', 'PX', tonumber(args[1]))
  drop_expired(keys[1], keys[2], keys[4], (clock()))
  local flat = redis.call('HGETALL', keys[1])
  local holds = {}
  for i = 1, #flat, 2 do
    local channel, qty, expires, granted = parse(flat[i + 1])
    holds[#holds + 1] = {flat[i], channel, qty, expires, granted}
  end
  table.sort(holds, function(a, b)
    if a[5] ~= b[5] then return a[5] < b[5] end
    return a[1] < b[1]
  end)
  local out = {}
  for _, h in ipairs(holds) do
    out[#out + 1] = h[1]; out[#out + 1] = h[2]; out[#out + 1] = h[3]; out[#out + 1] = h[4]
  end
  return out
end

-- publish (engine): KEYS avail, line, atp, ck, ckx, busy, pend[, pos]; ARGV json
-- {c: {channel: n}, l: {channel: max_line_qty}, n: {node: n}, k: {hold_id: "absorbed"|"gone"}},
-- then node, position, node, position... (msgpack, for operators: written as given). New
-- availability and the holds it accounts for change in one step, so no unit is counted twice
-- (in avail and pending) or not at all. Lifts the fence.
local function publish(keys, args)
  local avail, line, atp, ck, ckx, busy, pend =
    keys[1], keys[2], keys[3], keys[4], keys[5], keys[6], keys[7]
  local view = cjson.decode(args[1])
  local most = view.l or {}
  -- max_line_qty never above available: the engine computes it so, and reserve grants on
  -- max_line_qty alone. A channel without a new max_line_qty keeps its old one, cut to fit.
  for channel, n in pairs(view.c) do
    redis.call('HSET', avail, channel, n)
    local cap = most[channel] or tonumber(redis.call('HGET', line, channel) or '0')
    redis.call('HSET', line, channel, math.min(cap, n))
  end
  for channel, n in pairs(most) do
    if view.c[channel] == nil then
      redis.call('HSET', line, channel,
                 math.min(n, tonumber(redis.call('HGET', avail, channel) or '0')))
    end
  end
  for node, n in pairs(view.n) do redis.call('HSET', atp, node, n) end
  for i = 2, #args, 200 do  -- HSET in slices: unpack's stack is bounded
    redis.call('HSET', keys[8], unpack(args, i, math.min(i + 199, #args)))
  end
  for hold_id, what in pairs(view.k) do
    local v = redis.call('HGET', ck, hold_id)
    if v and what == 'gone' then
      forget(ck, ckx, pend, hold_id, v)
    elseif v and string.sub(v, -1) == '0' then  -- now counted in `avail`, no longer pending
      local _, qty = parse(v)
      redis.call('HSET', ck, hold_id, string.sub(v, 1, -2) .. '1')
      redis.call('DECRBY', pend, qty)
    end
  end
  redis.call('DEL', busy)
  return 1
end

redis.register_function('stockflow_reserve', reserve)
redis.register_function('stockflow_release', release)
redis.register_function('stockflow_begin', begin)
redis.register_function('stockflow_publish', publish)
