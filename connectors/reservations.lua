#!lua name=stockflow
-- The reservation API, as Redis Functions. Every key one call touches shares one hash tag, so
-- on Redis Cluster a call lives in one slot: on one Redis the SKU's ({sku}), on a cluster its
-- slot group's, whose heartbeat and stats copies live there too (connectors/redis_keys.py).
-- The functions read only the keys they are given, so both layouts run the same code.
--
-- Per SKU (on a cluster <p>:{group}:<sku>:avail and so on):
--   <p>:{sku}:avail  hash  channel -> units the engine published as sellable
--   <p>:{sku}:line   hash  channel -> max_line_qty: the most one order line can be promised
--                    (the largest ATP at one node where the channel does not split lines)
--   <p>:{sku}:ck     hash  hold_id -> "channel \t qty \t expires_ms \t granted_ms \t absorbed"
--   <p>:{sku}:ckx    zset  hold_id scored by expires_ms (to drop the expired)
--   <p>:{sku}:busy   string, short TTL: the engine is applying a batch of this SKU
--   <p>:{sku}:pos    hash  node -> its position (msgpack: on hand, inbound by kind, holds,
--                    allocations, safety stock, ATP), for operators; reservations never read it
--   <p>:{sku}:pend   units held by checkouts and not yet absorbed by the engine (a running
--                    sum, so a reservation costs the same however many holds are live)
-- Global on one Redis, one copy per slot group on a cluster (<p>:{group}:heartbeat):
--   <p>:heartbeat    ms until which the engine's picture counts as fresh
--   <p>:stats        hash  result -> calls (granted, short, line, stale, busy, badarg), for
--                    metrics (which sum the copies)

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function parse(v)
  local channel, qty, expires, granted, absorbed =
    string.match(v, '^(.-)\t(%d+)\t(%d+)\t(%d+)\t(%d)$')
  return channel, tonumber(qty), tonumber(expires), tonumber(granted), absorbed == '1'
end

-- Forget one hold; if the engine had not absorbed it, its units leave the pending sum.
local function forget(ck, ckx, pend, hold_id)
  local v = redis.call('HGET', ck, hold_id)
  if not v then return 0 end
  local _, qty, _, _, absorbed = parse(v)
  if not absorbed then redis.call('DECRBY', pend, qty) end
  redis.call('HDEL', ck, hold_id)
  redis.call('ZREM', ckx, hold_id)
  return 1
end

local function drop_expired(ck, ckx, pend, now)
  for _, hold_id in ipairs(redis.call('ZRANGEBYSCORE', ckx, '-inf', now)) do
    forget(ck, ckx, pend, hold_id)
  end
end

local function refuse(stats, code, message)
  redis.call('HINCRBY', stats, string.lower(code), 1)
  return redis.error_reply('STOCKFLOW_' .. code .. ' ' .. message)
end

-- reserve: KEYS avail, line, ck, ckx, busy, pend, heartbeat, stats;
-- ARGV channel, qty, ttl_ms, hold_id
-- -> {"held", hold_id, expires_ms}; errors STOCKFLOW_STALE / _BUSY / _SHORT / _LINE / _BADARG.
local function reserve(keys, args)
  if #keys ~= 8 then  -- a caller of the 7-key v1 signature: its keys would be misread
    return redis.error_reply('STOCKFLOW_BADARG reserve takes 8 keys: avail line ck ckx busy '
      .. 'pend heartbeat stats')
  end
  local avail, line, ck, ckx, busy, pend, heartbeat, stats =
    keys[1], keys[2], keys[3], keys[4], keys[5], keys[6], keys[7], keys[8]
  local channel, qty, ttl, hold_id = args[1], tonumber(args[2]), tonumber(args[3]), args[4]
  if not qty or qty <= 0 or qty ~= math.floor(qty) or not ttl or ttl <= 0 or not hold_id
     or hold_id == '' or string.find(channel or '', '\t') then
    return refuse(stats, 'BADARG', 'qty and ttl_ms must be positive integers, hold_id not empty')
  end
  local now = now_ms()
  if tonumber(redis.call('GET', heartbeat) or '0') < now then
    return refuse(stats, 'STALE', 'the engine heartbeat is stale: not selling against an old picture')
  end
  if redis.call('EXISTS', busy) == 1 then
    return refuse(stats, 'BUSY', 'the engine is applying a batch of this SKU: retry')
  end
  drop_expired(ck, ckx, pend, now)
  local existing = redis.call('HGET', ck, hold_id)
  if existing then  -- a retried call: the same hold
    local _, _, expires = parse(existing)
    return {'held', hold_id, expires}
  end
  local pending = tonumber(redis.call('GET', pend) or '0')
  local available = tonumber(redis.call('HGET', avail, channel) or '0') - pending
  if available < qty then
    return refuse(stats, 'SHORT', math.max(available, 0) .. ' available')
  end
  -- Where the channel does not split lines, the hold must fit at one node. The holds not yet
  -- taken in may all land on the largest one, so they count against it; where lines split,
  -- max_line_qty is the availability and this never refuses what SHORT let through.
  local one_line = tonumber(redis.call('HGET', line, channel) or '0') - pending
  if one_line < qty then
    return refuse(stats, 'LINE', math.max(one_line, 0) .. ' at most in one order line')
  end
  local expires = now + ttl
  redis.call('HSET', ck, hold_id, channel .. '\t' .. qty .. '\t' .. expires .. '\t' .. now .. '\t0')
  redis.call('ZADD', ckx, expires, hold_id)
  redis.call('INCRBY', pend, qty)
  redis.call('HINCRBY', stats, 'granted', 1)
  return {'held', hold_id, expires}
end

-- release: KEYS ck, ckx, pend; ARGV hold_id -> 1 if it was live, else 0.
local function release(keys, args)
  return forget(keys[1], keys[2], keys[3], args[1])
end

-- begin (engine): KEYS ck, ckx, busy, pend; ARGV busy_ttl_ms
-- Fences the SKU (reserve answers BUSY) and returns its live holds, oldest grant first:
-- {hold_id, channel, qty, expires_ms, ...}.
local function begin(keys, args)
  redis.call('SET', keys[3], '1', 'PX', tonumber(args[1]))
  drop_expired(keys[1], keys[2], keys[4], now_ms())
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
  for channel, n in pairs(view.c) do redis.call('HSET', avail, channel, n) end
  for channel, n in pairs(view.l or {}) do redis.call('HSET', line, channel, n) end
  for node, n in pairs(view.n) do redis.call('HSET', atp, node, n) end
  for i = 2, #args, 200 do  -- HSET in slices: unpack's stack is bounded
    redis.call('HSET', keys[8], unpack(args, i, math.min(i + 199, #args)))
  end
  for hold_id, what in pairs(view.k) do
    if what == 'gone' then
      forget(ck, ckx, pend, hold_id)
    else
      local v = redis.call('HGET', ck, hold_id)
      if v and string.sub(v, -1) == '0' then  -- now counted in `avail`, no longer pending
        local _, qty = parse(v)
        redis.call('HSET', ck, hold_id, string.sub(v, 1, -2) .. '1')
        redis.call('DECRBY', pend, qty)
      end
    end
  end
  redis.call('DEL', busy)
  return 1
end

redis.register_function('stockflow_reserve', reserve)
redis.register_function('stockflow_release', release)
redis.register_function('stockflow_begin', begin)
redis.register_function('stockflow_publish', publish)
