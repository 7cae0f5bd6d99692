"""WOS protection: each channel with `wos_weeks` keeps that many weeks of its own demand.

A channel's demand for a SKU is learnt from its order lines in event time, as an
exponentially weighted rate of units per week (`RATE_WEEKS` its time constant): steady demand
of d units a week settles at d, and a channel that stops ordering sees its rate, and its
protection, fall by e every `RATE_WEEKS` weeks. Every line the channel orders counts, filled
or not: a channel refused for lack of stock still had the demand protection is for. A line
counts once it is placed, so it meets the protection published before it.

Protected units (`protected_units`) = weekly rate x the weeks protection covers: `wos_weeks`,
or less when the next supply is nearer. Units beyond what the channel is forecast to sell
before the next inbound enters the pool (its ETA minus the engine's inbound horizon) would
sit until that supply comes, so other channels may take them: that is the sharing. Both are
taken at the start of the clock's day, so protection moves with the SKU's events and once a
day, not with every tick of a clock other SKUs move; the sweep that begins each day
(sweep.py) works it out again for every SKU, event or none.

The protection is a pool per SKU, not a fixed amount per node: spread over the channel's
nodes in proportion to the ATP it sees at each (`shares`), it follows the stock wherever it
lies, and no node is asked to protect more than it has; where channels overlap beyond a
node's ATP, each share is cut in proportion. Other channels see each node's ATP less the
units protected there for every channel but themselves (`against`); the protecting channel
sells from everything. Protection only ever lowers what a channel may take, so it never
causes an oversell.

Kept only for channels with `wos_weeks`, one small record per SKU and channel, dropped once
its protection rounds to nothing: memory stays bounded by SKUs x such channels.

`sold_away` measures what protection is for: units another channel took (with protection off,
`EngineConfig.wos_protection`) that were protected for this one at that moment. When the
channel then runs out (a line rejected or backordered for lack of stock), an alert
`wos_sold_away` says how many; with protection on it stays 0.
"""

from __future__ import annotations

from math import exp, floor
from typing import TYPE_CHECKING

import msgspec

from .supply_policy import channel_atp

if TYPE_CHECKING:
    from .book import SkuBook
    from .context import Ctx
    from .master import Catalog

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
RATE_WEEKS = 1.0  # the moving average's time constant: about the last week weighs most
NOTHING: dict[str, int] = {}  # what `against` gives a SKU that protects nothing; never changed

# channel -> node -> units protected there for that channel
Shares = dict[str, dict[str, int]]


class ChannelRate(msgspec.Struct, array_like=True, gc=False):  # gc=False: see inbound.py
    """One channel's demand for one SKU."""

    rate: float  # units per week, as of `at_ms`
    at_ms: int  # event time of the last line counted
    sold_away: int = 0  # units protected for it that other channels took since it last ran out


def rate_at(record: ChannelRate, clock_ms: int, weeks: float = RATE_WEEKS) -> float:
    """The weekly rate at `clock_ms`: decayed for the time since the last line (`weeks` the
    time constant it was learnt with)."""
    if clock_ms <= record.at_ms:
        return record.rate
    return record.rate * exp(-(clock_ms - record.at_ms) / (weeks * WEEK_MS))


def count_order(book: SkuBook, catalog: Catalog, channel_id: str, qty: int,
                clock_ms: int) -> None:
    """A line of `qty` units ordered by the channel: its rate rises (only for a channel with
    `wos_weeks`). Records that protect nothing any more are dropped here."""
    channel = catalog.channels.get(channel_id)
    if channel is not None and channel.wos_weeks:
        rates = book.wos
        if rates is None:
            rates = book.wos = {}
        record = rates.get(channel_id)
        if record is None:
            record = rates[channel_id] = ChannelRate(0.0, clock_ms)
        record.rate = rate_at(record, clock_ms) + qty / RATE_WEEKS
        record.at_ms = max(record.at_ms, clock_ms)
    if book.wos is not None:
        forget_idle(book, catalog, clock_ms)


def forget_idle(book: SkuBook, catalog: Catalog, clock_ms: int) -> None:
    """Drop records that protect nothing today (`protected_units` would give them 0)."""
    day_ms = clock_ms - clock_ms % DAY_MS
    for channel_id, record in list(book.wos.items()):
        channel = catalog.channels.get(channel_id)
        weeks = channel.wos_weeks if channel is not None else None
        if record.sold_away == 0 and (not weeks or rate_at(record, day_ms) * weeks + 1e-9 < 1):
            del book.wos[channel_id]
    if not book.wos:
        book.wos = None


def protected_units(book: SkuBook, catalog: Catalog, until_ms: int, clock_ms: int,
                    next_at: dict[str, int] | None = None) -> dict[str, int]:
    """channel -> units of the SKU protected for it today: its weekly rate x `wos_weeks`, or
    x the weeks until the next inbound at its nodes enters the pool, if sooner (rounded
    down). Both are taken at the start of the clock's day, so protection moves only with the
    SKU's own events and once a day, and a published availability holds until then.
    `next_at`: `next_supplies` at the day's pool, if the caller has it."""
    out: dict[str, int] = {}
    if book.wos is None:
        return out
    day_ms = clock_ms - clock_ms % DAY_MS
    pool_ms = pool_at(until_ms, clock_ms)
    if next_at is None:
        next_at = next_supplies(book, pool_ms)
    for channel_id, record in sorted(book.wos.items()):
        channel = catalog.channels.get(channel_id)
        if channel is None or not channel.wos_weeks:
            continue
        weeks = channel.wos_weeks
        if next_at:
            next_ms = soonest_at(next_at, catalog.channel_nodes(channel_id))
            if next_ms is not None:
                weeks = min(weeks, (next_ms - pool_ms) / WEEK_MS)
        units = floor(rate_at(record, day_ms) * weeks + 1e-9)
        if units > 0:
            out[channel_id] = units
    return out


def pool_at(until_ms: int, clock_ms: int) -> int:
    """The horizon of today's pool: inbound due by then counts as ATP today."""
    day_ms = clock_ms - clock_ms % DAY_MS
    return until_ms - clock_ms + day_ms


def soonest_at(next_at: dict[str, int], members: frozenset[str]) -> int | None:
    """The earliest of `next_supplies` at these nodes (None: there is none)."""
    return min((eta for node, eta in next_at.items() if node in members), default=None)


def next_supplies(book: SkuBook, pool_ms: int) -> dict[str, int]:
    """node -> the earliest ETA of inbound there that ATP does not count yet, for nodes that
    have some: found once for every channel, which then takes the soonest at its nodes."""
    soonest: dict[str, int] = {}
    for node, pos in book.positions.items():
        if pos.inbound is not None:
            eta = pos.inbound.next_after(pool_ms)
            if eta is not None:
                soonest[node] = eta
    return soonest


def shares(book: SkuBook, catalog: Catalog, until_ms: int, clock_ms: int,
           units: dict[str, int] | None = None,
           engine_atp: dict[str, int] | None = None,
           last: dict[str, tuple[int, dict[str, int], dict[str, int]]] | None = None) -> Shares:
    """Per protecting channel, its protected units (`units`, else `protected_units`) spread
    over its nodes in proportion to the ATP it sees at each (largest remainders, then node
    id), never more than that ATP; where channels overlap beyond a node's ATP, each is cut
    in proportion, so every protecting channel can still reach its own share.
    `engine_atp`: `atp_by_node`, if the caller has it. `last`: channel -> (units, ATP, their
    `spread`) as an earlier call left them, given again where both are the same (a line
    taken at a store leaves the spread of a channel of DCs as it was), and updated."""
    if units is None:
        units = protected_units(book, catalog, until_ms, clock_ms)
    out: Shares = {}
    if not units:
        return out
    kept_out = book.kept_out()
    if engine_atp is None:
        engine_atp = atp_by_node(book, until_ms)
    horizon_ms = until_ms - clock_ms
    for channel_id, wanted in units.items():
        members = catalog.channel_nodes(channel_id)
        view = (catalog.supply_view(channel_id, horizon_ms) if catalog.supply_policies
                else None)
        if view is not None:
            atp = {}
            for node, pos in book.positions.items():
                if node in members:
                    here = channel_atp(pos, until_ms, view) - kept_out.get(node, 0)
                    if here > 0:
                        atp[node] = here
        elif members.issuperset(engine_atp):
            atp = engine_atp  # every node with ATP serves it (read only, as below)
        else:
            atp = {node: here for node, here in engine_atp.items() if node in members}
        if atp:
            known = None if last is None else last.get(channel_id)
            if known is not None and known[0] == wanted and known[1] == atp:
                out[channel_id] = dict(known[2])  # a copy: `_fit` cuts in place
            else:
                out[channel_id] = spread(wanted, atp)
                if last is not None:
                    last[channel_id] = (wanted, atp, dict(out[channel_id]))
    if len(out) > 1:
        _fit(out, engine_atp)
    return out


def atp_by_node(book: SkuBook, until_ms: int,
                nodes: frozenset[str] | None = None) -> dict[str, int]:
    """node -> ATP in the engine's view (every channel's without a policy), where above 0;
    at `nodes` only, if given (ATP is not asked of the others)."""
    kept_out = book.kept_out()
    atp = {}
    for node, pos in book.positions.items():
        if nodes is not None and node not in nodes:
            continue
        here = pos.atp(until_ms) - kept_out.get(node, 0)
        if here > 0:
            atp[node] = here
    return atp


def spread(wanted: int, atp: dict[str, int]) -> dict[str, int]:
    """`wanted` units over nodes in proportion to their `atp` (all of it when `wanted` is
    as much or more): rounded down, then a unit more each to the largest remainders, then
    node id."""
    total = sum(atp.values())
    if wanted >= total:
        return dict(atp)
    out = {node: wanted * here // total for node, here in atp.items()}
    left = wanted - sum(out.values())
    if left:
        remainders = sorted([(-(wanted * here % total), node) for node, here in atp.items()])
        for _, node in remainders[:left]:
            out[node] += 1
    return out


def _fit(out: Shares, engine_atp: dict[str, int]) -> None:
    """Where the channels' shares at a node add up to more than its ATP, cut each in
    proportion (rounded down)."""
    summed: dict[str, int] = {}
    for by_node in out.values():
        for node, units in by_node.items():
            summed[node] = summed.get(node, 0) + units
    for node, total in summed.items():
        atp = engine_atp.get(node, 0)
        if total > atp:
            for by_node in out.values():
                if node in by_node:
                    by_node[node] = by_node[node] * atp // total


def against(protection: Shares, channel_id: str) -> dict[str, int]:
    """node -> units the channel may not take there: what is protected for every other one."""
    if not protection or (len(protection) == 1 and channel_id in protection):
        return NOTHING
    out: dict[str, int] = {}
    for other, spread in protection.items():
        if other != channel_id:
            for node, units in spread.items():
                out[node] = out.get(node, 0) + units
    return out


def note_taken(ctx: Ctx, channel_id: str, parts: list[tuple[str, int]],
               protection: Shares) -> None:
    """Before `parts` are committed for a line of `channel_id`: units beyond what was free of
    other channels' protection at a node are theirs sold away (0 while protection is on)."""
    book = ctx.book
    guard = against(protection, channel_id)
    if not guard:
        return
    view = ctx.view(channel_id)
    kept_out = book.kept_out()
    for node, qty in parts:
        if not guard.get(node):
            continue
        free = channel_atp(book.positions[node], ctx.until_ms, view) - kept_out.get(node, 0)
        excess = qty - max(0, free - guard[node])
        for other in sorted(protection):
            if excess <= 0:
                break
            here = protection[other].get(node, 0) if other != channel_id else 0
            if here:
                taken = min(here, excess)
                book.wos[other].sold_away += taken
                excess -= taken


def ran_out(ctx: Ctx, channel_id: str) -> None:
    """A line of the channel found no stock: say how many units protected for it other
    channels took since it last ran out, if any."""
    rates = ctx.book.wos
    record = None if rates is None else rates.get(channel_id)
    if record is None or not record.sold_away:
        return
    ctx.emit.alert(
        "wos_sold_away", ctx.sku,
        f"{record.sold_away} units protected for {channel_id} were sold to other channels "
        f"before its line ran out",
        channel=channel_id,
    )
    record.sold_away = 0
