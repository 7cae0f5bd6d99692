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
--   <p>:{sku}:ckr    set   hold_ids released (not expired) since the engine last took holds in
--   <p>:{sku}:ckt    hash  last -> the hold set the engine last took in (as logged), n -> intakes
--   <p>:{sku}:ckl    zset  the intake log: what the engine took in and where (scored by the
--                    position in its merged input), so a restarted engine takes in exactly
--                    what the run before it did up to where that one got
-- Global on one Redis, one per slot group on a cluster (<p>:{group}:ckdue):
--   <p>:ckdue        zset  SKU scored by when the engine should take its holds in: now after a
--                    grant or a release, a hold's expiry otherwise
--   <p>:ckwoken      zset  "position:SKU" of the intakes the engine made for a SKU with no
--                    other traffic (at odd positions), scored by position: a restarted
--                    engine takes them in again at the same places
-- Global (on a cluster in the first slot group):
--   <p>:intake-at    the furthest position the engine has fenced (see begin)
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

-- Ask the engine to take the SKU's holds in by `at_s` (ms, as text), or sooner if already asked.
local function wake(due, sku, at_s)
  if due then redis.call('ZADD', due, 'LT', at_s, sku) end
end

-- The rest of a grant once the hold's record is in ck. Numbers go to Redis as text (qty_s,
-- expires_s): Redis formats a Lua number argument with "%.17g", dearer than the call itself.
local function granted(ckx, pend, stats, hold_id, qty_s, expires_s, expires)
  redis.call('ZADD', ckx, expires_s, hold_id)
  redis.call('INCRBY', pend, qty_s)
  redis.call('HINCRBY', stats, 'granted', '1')
  return {'held', hold_id, expires}
end

-- Separators of the intake log's entries; refused in ids and channels (reserve's BADARG).
local FIELD, HOLD, PART = '\t', '\30', '\31'

-- reserve: KEYS avail, line, ck, ckx, busy, pend, heartbeat, stats, due;
-- ARGV channel, qty, ttl_ms, hold_id, sku
-- -> {"held", hold_id, expires_ms}; errors STOCKFLOW_STALE / _BUSY / _SHORT / _LINE / _BADARG.
-- A grant asks the engine (through due) to take the SKU's holds in now, so what it publishes
-- counts the hold whether or not the SKU has other traffic. The 8-key form of the previous
-- version (no due, no sku) still grants, and the hold is taken in with the SKU's next event.
-- Expired holds are dropped only when they could change the answer: a grant that fits even
-- with them still counted in the pending sum is the grant it would be without them, so only
-- a refusal (or a hold_id already known) first drops them and decides again. Every other
-- call skips that sweep; begin drops them too, for every batch of the SKU.
local function reserve(keys, args)
  if #keys ~= 9 and #keys ~= 8 then  -- a caller of the 7-key v1 signature: misread keys
    return redis.error_reply('STOCKFLOW_BADARG reserve takes 9 keys: avail line ck ckx busy '
      .. 'pend heartbeat stats due')
  end
  local avail, line, ck, ckx, busy, pend, heartbeat, stats, due =
    keys[1], keys[2], keys[3], keys[4], keys[5], keys[6], keys[7], keys[8], keys[9]
  local channel, qty_s, ttl, hold_id, sku = args[1], args[2], tonumber(args[3]), args[4], args[5]
  local plain = string.find(qty_s or '', '^[1-9]%d*$')  -- as Redis reads an integer
  local qty = plain and qty_s + 0 or tonumber(qty_s)
  if not qty or qty <= 0 or qty ~= math.floor(qty) or not ttl or ttl <= 0 or not hold_id
     or hold_id == '' or string.find(hold_id, '[\t\30\31]') or (due and not sku)
     or string.find(channel or '', '[\t\30\31]') then
    return refuse(stats, 'BADARG', 'qty and ttl_ms must be positive integers, hold_id not '
      .. 'empty, no tab or separator in hold_id and channel, the sku with 9 keys')
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
    wake(due, sku, now_s)
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
  wake(due, sku, now_s)
  return granted(ckx, pend, stats, hold_id, qty_s, expires_s, expires)
end

-- release: KEYS ck, ckx, pend, ckr, due; ARGV hold_id, sku -> 1 if it was live, else 0 (an
-- expired hold is dropped all the same: reserve may not have swept it yet). A live one is
-- noted as released, and the engine asked to take the SKU's holds in now. (The 3-key form of
-- the previous version still releases; the engine then sees the hold gone with the SKU's next
-- event, as expired.)
local function release(keys, args)
  local v = redis.call('HGET', keys[1], args[1])
  if not v then return 0 end
  local _, _, expires = parse(v)
  local now_s, now = clock()
  forget(keys[1], keys[2], keys[3], args[1], v)
  if expires <= now then return 0 end
  if keys[4] then
    redis.call('SADD', keys[4], args[1])
    wake(keys[5], args[2], now_s)
  end
  return 1
end

-- The SKU's live holds as one line of text, oldest grant first, and the earliest expiry.
local function live_holds(ck)
  local flat = redis.call('HGETALL', ck)
  local holds = {}
  local soonest = nil
  for i = 1, #flat, 2 do
    local channel, qty, expires, granted = parse(flat[i + 1])
    holds[#holds + 1] = {flat[i], channel, qty, expires, granted}
    if not soonest or expires < soonest then soonest = expires end
  end
  table.sort(holds, function(a, b)
    if a[5] ~= b[5] then return a[5] < b[5] end
    return a[1] < b[1]
  end)
  local parts = {}
  for i, h in ipairs(holds) do
    parts[i] = h[1] .. PART .. h[2] .. PART .. string.format('%d', h[3]) .. PART
      .. string.format('%d', h[4])
  end
  return table.concat(parts, HOLD), soonest
end

-- Keep the intake log to what a restart could ask for: entries of the last `keep_ms`, at
-- most KEEP of them (only a write trims, and a write comes after a rerun's catch-up).
local KEEP = 4096
local function trim(ckl, now, keep_ms)
  redis.call('ZREMRANGEBYRANK', ckl, 0, -(KEEP + 1))
  for _ = 1, 64 do
    local head = redis.call('ZRANGE', ckl, 0, 0)[1]
    if not head or tonumber(string.match(head, '\t(%d+)$')) >= now - keep_ms then return end
    redis.call('ZREMRANGEBYRANK', ckl, 0, 0)
  end
end

local WOKEN_KEEP = 100000  -- of the intakes at odd positions, the newest are kept

-- begin (engine): KEYS ck, ckx, busy, pend, ckt, ckl, ckr, due, woken;
-- ARGV busy_ttl_ms, sku, fresh_at, redo_until, clock_ms, keep_ms
-- Fences the SKU (reserve answers BUSY until publish) and returns intake log entries:
--   n \t at \t clock_ms \t holds \t released \t logged_ms
-- (holds: hold_id, channel, qty, expires_ms joined by \31, holds by \30; released: hold_ids
-- by \30). With redo_until (not ''): every logged entry at or before it (a restarted engine
-- takes in what the run before it took, where it took it). With fresh_at (not ''): the
-- live holds, logged at fresh_at with the engine's clock_ms and returned, if they are not the
-- set last logged; and the SKU is due again at the earliest expiry among them. An entry at an
-- odd position (the SKU had nothing else there) is also noted in woken.
local function begin(keys, args)
  local ck, ckx, busy, pend, ckt, ckl, ckr, due, woken =
    keys[1], keys[2], keys[3], keys[4], keys[5], keys[6], keys[7], keys[8], keys[9]
  local sku, fresh_at, redo_until, clock_ms = args[2], args[3], args[4], args[5]
  redis.call('SET', busy, '1', 'PX', tonumber(args[1]))
  local out = {}
  if redo_until ~= '' then
    out = redis.call('ZRANGEBYSCORE', ckl, '-inf', redo_until)
  end
  if fresh_at == '' then return out end
  local now_s, now = clock()
  drop_expired(ck, ckx, pend, now_s)
  local held, soonest = live_holds(ck)
  if soonest then redis.call('ZADD', due, soonest, sku) else redis.call('ZREM', due, sku) end
  local last, n = unpack(redis.call('HMGET', ckt, 'last', 'n'))
  if held == (last or '') then
    redis.call('DEL', ckr)  -- released before the engine ever took them in
    return out
  end
  local released = table.concat(redis.call('SMEMBERS', ckr), HOLD)
  redis.call('DEL', ckr)
  n = (tonumber(n) or 0) + 1
  local entry = string.format('%012d', n) .. FIELD .. fresh_at .. FIELD .. clock_ms .. FIELD
    .. held .. FIELD .. released .. FIELD .. now_s
  redis.call('ZADD', ckl, fresh_at, entry)
  redis.call('HSET', ckt, 'last', held, 'n', n)
  trim(ckl, now, tonumber(args[6]))
  if tonumber(fresh_at) % 2 == 1 then
    redis.call('ZADD', woken, fresh_at, fresh_at .. ':' .. sku)
    redis.call('ZREMRANGEBYRANK', woken, 0, -(WOKEN_KEEP + 1))
  end
  out[#out + 1] = entry
  return out
end

-- due (engine): KEYS due; ARGV limit -> SKUs whose holds are due to be taken in (their grant,
-- release or expiry has come), at most `limit`; they leave the set (begin puts them back at
-- their next expiry).
local function due_skus(keys, args)
  local now_s = clock()
  local skus = redis.call('ZRANGEBYSCORE', keys[1], '-inf', now_s, 'LIMIT', 0, tonumber(args[1]))
  if #skus > 0 then redis.call('ZREM', keys[1], unpack(skus)) end
  return skus
end

-- progress (engine): KEYS intake-at; ARGV position: the furthest position fenced, never
-- lowered (a restarted engine reruns what lies before it from the log, not from live holds).
local function progress(keys, args)
  local was = tonumber(redis.call('GET', keys[1]) or '-1')
  if tonumber(args[1]) > was then redis.call('SET', keys[1], args[1]) end
  return 1
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
redis.register_function('stockflow_due', due_skus)
redis.register_function('stockflow_progress', progress)
redis.register_function('stockflow_publish', publish)
