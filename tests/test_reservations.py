"""The reservation API (Redis Functions) and the engine's read model, against a real Redis.

Checkouts reserve through `stockflow_reserve`; the engine fences the SKUs of each batch, takes
the live checkout holds into its ledger, and publishes availability (in all, and the most one
order line can get) with what became of them.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid

import msgspec
import pytest
import redis

from stockflow.connectors.redis_store import RedisRefused
from stockflow.connectors.reservations import ReservationRefused, Reservations, install
from stockflow.dataflows.logic import LedgerLogic
from stockflow.dataflows.read_model_steps import write
from stockflow.state.lines import ALLOCATED, HELD
from stockflow.state.node_position import NodePosition, node_positions

from .live_engine import LiveEngine, setup_engine, try_reserve
from .scenario import BEIJING, GUANGZHOU
from .servers import RedisServer, free_port


@pytest.fixture()
def client(redis_url):
    c = redis.Redis.from_url(redis_url, socket_timeout=5)
    install(c)
    return c


def race(api, sku: str, channel: str, clients: int) -> list:
    """`clients` checkouts asking for one unit each at the same moment; the holds granted."""
    granted = []
    barrier = threading.Barrier(clients)

    def checkout():
        barrier.wait()
        hold = try_reserve(api, sku, channel, 1)
        if hold:
            granted.append(hold)

    threads = [threading.Thread(target=checkout) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return granted


def test_64_clients_race_for_the_last_10_units(client):
    engine, api = setup_engine(client, 10, "RACE")
    assert api.available("RACE", "web") == 10
    assert len(race(api, "RACE", "web", clients=64)) == 10
    assert try_reserve(api, "RACE", "mkt", 1) is None  # pending holds count for every channel


def test_a_hold_expires_on_time(client):
    engine, api = setup_engine(client, 3, "EXP")
    api.reserve("EXP", "web", 3, 300, "h1")
    assert try_reserve(api, "EXP", "web", 1) is None
    time.sleep(0.4)
    assert try_reserve(api, "EXP", "web", 3) is not None


def test_an_absorbed_hold_is_counted_once_and_settles_into_its_order(client):
    engine, api = setup_engine(client, 10, "ABS")
    e = engine.ev
    api.reserve("ABS", "web", 4, 60_000, "cart-1")
    engine.feed(e.adjust("ABS", "A", 0))  # any event of the SKU: the engine absorbs the hold
    book = engine.book("ABS")
    assert book.positions["A"].held == 4
    assert api.available("ABS", "web") == 6  # published availability now accounts for it
    assert try_reserve(api, "ABS", "web", 7) is None  # not 6 - 4 again, nor 10 - 4 + ...
    assert try_reserve(api, "ABS", "web", 6) is not None
    out = engine.feed(e.order("O1", [("ABS", 4)], paid=True, hold_id="cart-1"))
    assert book.positions["A"].allocated == 4
    assert book.positions["A"].held == 6  # the other checkout's 6, absorbed with this batch
    assert client.hget(f"{api.keys.checkouts('ABS')}", "cart-1") is None  # settled: gone
    assert any(b"allocate/O1/1/A" in line for stream, lines in out for line in lines)


def test_a_batch_over_many_buckets_costs_one_round_trip_before_and_one_after(client):
    """Checkout holds of SKUs in different buckets are all read by one fence and all
    settled by one write: the round trips are per batch, not per bucket."""
    engine, api = setup_engine(client, 5, "RT0")
    e = engine.ev
    skus = [f"RT{i}" for i in range(12)]
    engine.feed(*(e.snapshot(sku, "A", 5) for sku in skus[1:]))
    buckets = {engine.router.bucket(sku) for sku in skus}
    assert len(buckets) >= 3  # the batch below really spans several buckets
    for sku in skus:
        api.reserve(sku, "web", 2, 60_000, f"cart-{sku}")
    round_trips = []
    run = engine.store._run

    def counted(pipe):
        round_trips.append(len(pipe))
        return run(pipe)

    engine.store._run = counted
    engine.feed(*(e.adjust(sku, "A", 0) for sku in skus))
    assert len(round_trips) == 2, round_trips
    for sku in skus:  # every hold was read before and settled after, in those two
        assert engine.book(sku).positions["A"].held == 2
        assert api.available(sku, "web") == 3


def test_a_batch_that_reaches_its_bucket_after_the_fence_lapsed_is_fenced_again(client):
    """In a cluster, a process that is behind applies a batch long after the routing process
    fenced it; a checkout may take a hold once the fence lapses. The bucket fences again and
    reads that hold before it allocates, so the two never share a unit."""
    engine, api = setup_engine(client, 10, "LAG")
    engine.store.fence_ms = 200
    e = engine.ev
    routed = engine.fenced(e.order("M1", [("LAG", 8)], channel="mkt", paid=True))
    api.busy_wait_s = 0
    with pytest.raises(ReservationRefused, match="BUSY"):  # fenced
        api.reserve("LAG", "web", 5, 60_000, "cart-early")
    time.sleep(0.3)
    api.reserve("LAG", "web", 5, 60_000, "cart-late")  # the fence lapsed: granted
    (bucket, late), = routed
    logic = engine.buckets.get(bucket) or LedgerLogic(engine.config, False, None, engine.store)
    write(engine.store)(logic.on_batch([late])[0])
    position = logic.ledger.books["LAG"].positions["A"]
    assert position.held == 5  # the checkout's hold, read before the order was placed
    assert position.held + position.allocated <= 10


def test_reserve_refuses_when_the_heartbeat_is_stale(client):
    engine, api = setup_engine(client, 5, "HB", stale_after_s=0.2)
    assert try_reserve(api, "HB", "web", 1) is not None
    time.sleep(0.3)
    with pytest.raises(ReservationRefused) as refused:
        api.reserve("HB", "web", 1, 60_000, "late")
    assert refused.value.code == "STALE"
    engine.store.beat()
    assert try_reserve(api, "HB", "web", 1) is not None


def test_expired_holds_left_by_grants_are_dropped_before_a_refusal(client):
    """A grant skips the sweep of expired holds; the call that would refuse does it first."""
    engine, api = setup_engine(client, 5, "LAZY")
    api.reserve("LAZY", "web", 2, 200, "short-lived")
    api.reserve("LAZY", "web", 1, 60_000, "a")
    time.sleep(0.3)
    api.reserve("LAZY", "web", 1, 60_000, "b")  # fits with the expired hold still counted
    assert client.hget(api.keys.checkouts("LAZY"), "short-lived") is not None
    assert try_reserve(api, "LAZY", "web", 3) is not None  # 5 - 2 live: the expired 2 came back
    assert client.hget(api.keys.checkouts("LAZY"), "short-lived") is None
    assert int(client.get(api.keys.pending("LAZY"))) == 5
    assert try_reserve(api, "LAZY", "web", 1) is None


def test_a_retried_hold_id_after_its_expiry_is_a_new_hold_counted_once(client):
    engine, api = setup_engine(client, 3, "AGAIN")
    first = api.reserve("AGAIN", "web", 2, 200, "cart-1")
    assert api.reserve("AGAIN", "web", 2, 200, "cart-1") == first  # a retry: the same hold
    time.sleep(0.3)
    second = api.reserve("AGAIN", "web", 2, 60_000, "cart-1")
    assert second.expires_ms > first.expires_ms + 50_000
    assert int(client.get(api.keys.pending("AGAIN"))) == 2
    assert try_reserve(api, "AGAIN", "web", 2) is None and try_reserve(api, "AGAIN", "web", 1)


def test_releasing_an_expired_hold_says_it_was_not_live(client):
    engine, api = setup_engine(client, 3, "GONE")
    api.reserve("GONE", "web", 3, 200, "cart-1")
    time.sleep(0.3)
    assert not api.release("GONE", "cart-1")
    assert client.hget(api.keys.checkouts("GONE"), "cart-1") is None
    assert int(client.get(api.keys.pending("GONE"))) == 0
    assert api.release("GONE", "nothing") is False


def test_a_quantity_written_otherwise_counts_as_its_units(client):
    """FCALL from any language: "2.0" or "02" is 2 units, as the Python client's "2" is."""
    engine, api = setup_engine(client, 10, "FORM")
    keys = api.keys.reserve("FORM")
    for i, qty in enumerate(["2.0", "02", "2"]):
        client.fcall("stockflow_reserve", len(keys), *keys, "web", qty, 60_000, f"h{i}", "FORM")
    assert int(client.get(api.keys.pending("FORM"))) == 6
    assert client.hget(api.keys.checkouts("FORM"), "h0").split(b"\t")[1] == b"2"
    for qty in ["0", "-1", "1.5", "x", ""]:
        with pytest.raises(redis.ResponseError, match="STOCKFLOW_BADARG"):
            client.fcall("stockflow_reserve", len(keys), *keys, "web", qty, 60_000, "bad", "FORM")


def test_released_and_expired_holds_give_units_back_to_the_engine(client):
    engine, api = setup_engine(client, 5, "REL")
    e = engine.ev
    api.reserve("REL", "web", 2, 60_000, "a")
    api.reserve("REL", "web", 3, 200, "b")
    engine.feed(e.adjust("REL", "A", 0))
    assert engine.book("REL").positions["A"].held == 5
    assert api.release("REL", "a")
    time.sleep(0.3)
    engine.feed(e.adjust("REL", "A", 0))
    assert engine.book("REL").positions["A"].held == 0
    assert api.available("REL", "web") == 5


def test_redis_down_keeps_the_engine_going_and_it_republishes_after(client, redis_url):
    engine, api = setup_engine(client, 5, "DOWN")
    e = engine.ev
    good = engine.store.client
    engine.store.client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    out = engine.feed(e.order("O1", [("DOWN", 2)], paid=True))
    assert any(b"allocate/O1" in line for _, lines in out for line in lines)
    assert engine.store.outages >= 1
    assert api.available("DOWN", "web") == 5  # Redis still shows the old picture
    engine.store.client = good
    engine.store._down_until = 0.0
    engine.tick()  # every bucket rewrites its whole read model, with or without a batch
    assert api.available("DOWN", "web") == 3


@pytest.mark.parametrize("seed", range(3))
def test_checkouts_and_marketplace_orders_never_promise_a_unit_twice(client, seed):
    """Checkout threads reserve while marketplace orders flow through the engine."""
    stock = 30
    engine, api = setup_engine(client, stock, "LAST")
    e = engine.ev
    begin = engine.store.begin

    def slow_begin(*args):  # a batch that takes a while: checkouts keep arriving meanwhile
        live = begin(*args)
        time.sleep(0.003)
        return live

    engine.store.begin = slow_begin
    granted: list[str] = []
    stop = threading.Event()

    def checkout():
        rnd = random.Random()
        while not stop.is_set():
            hold = try_reserve(api, "LAST", "web", rnd.randint(1, 2))
            if hold:
                granted.append(hold)
            time.sleep(rnd.uniform(0.002, 0.01))  # checkouts arrive spread out, as orders do

    threads = [threading.Thread(target=checkout) for _ in range(4)]
    for t in threads:
        t.start()
    rnd = random.Random(seed)
    for i in range(40):
        engine.feed(e.order(f"M{i}", [("LAST", rnd.randint(1, 2))], channel="mkt", paid=True))
    stop.set()
    for t in threads:
        t.join()
    engine.feed(e.adjust("LAST", "A", 0))  # the engine absorbs the last checkout holds
    book = engine.book("LAST")
    pos = book.positions["A"]
    assert pos.held + pos.allocated <= stock
    held_checkouts = {
        oid.removeprefix("checkout:") for oid, lines in book.lines.items()
        if oid.startswith("checkout:") and lines["1"].status == HELD
    }
    assert held_checkouts == set(granted)  # every granted hold is a commitment of the engine
    allocated = sum(
        line.qty for oid, lines in book.lines.items() for line in lines.values()
        if not oid.startswith("checkout:") and line.status == ALLOCATED
    )
    assert allocated + sum(book.lines[f"checkout:{h}"]["1"].qty for h in granted) <= stock
    assert granted and allocated  # both sides sold something


def test_engine_holds_are_mirrored_with_their_remaining_life(client):
    engine, api = setup_engine(client, 5, "MIR")
    e = engine.ev
    engine.feed(e.order("O1", [("MIR", 2)]))  # unpaid: held for the channel's 60 s
    key = api.keys.hold("MIR", "O1/1")
    assert client.get(key) == b'{"A":2}'
    assert 59_000 <= client.pttl(key) <= 60_000
    engine.feed(e.paid("O1"))
    assert client.exists(key) == 0  # allocated now: no longer a hold


def test_redis_with_a_password(tmp_path):
    """AUTH through the URL: a Redis of our own that requires a password."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://:s3cret@127.0.0.1:{port}/0"
        c = redis.Redis.from_url(url)
        for _ in range(50):
            try:
                c.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        install(c)
        engine, api = setup_engine(c, 3, "AUTH")
        assert api.reserve("AUTH", "web", 3, 60_000, "h").hold_id == "h"
    finally:
        server.terminate()
        server.wait()


def test_a_settled_checkout_hold_is_counted_for_metrics(client):
    from stockflow.ops.metrics import HOLDS_SETTLED, Observer

    engine, api = setup_engine(client, 10, "SET")
    observer = Observer()
    for logic in engine.buckets.values():
        logic.observer = observer
    api.reserve("SET", "web", 2, 60_000, "cart-9")
    before = HOLDS_SETTLED._value.get()
    engine.feed(engine.ev.order("O9", [("SET", 2)], paid=True, hold_id="cart-9"))
    assert HOLDS_SETTLED._value.get() - before == 1


# -- one order line: max_line_qty ------------------------------------------------------------


def setup_nodes(client, sku: str, stock: dict[str, int]) -> tuple[LiveEngine, Reservations]:
    """Nodes A (Shanghai), B (Guangzhou), C (Beijing) with `stock`; channel `web` does not split
    lines, channel `split` does."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    engine = LiveEngine(client, prefix)
    e = engine.ev
    engine.feed(e.node("A"), e.node("B", region="Guangdong", at=GUANGZHOU),
                e.node("C", region="Beijing", at=BEIJING),
                e.channel("web", hold_ttl_s=60),
                e.channel("split", hold_ttl_s=60, allow_split=True))
    engine.feed(*(e.snapshot(sku, node, qty) for node, qty in stock.items()))
    return engine, Reservations(client, prefix, busy_wait_s=5.0)


def refusal(api, sku, channel, qty) -> str | None:
    try:
        api.reserve(sku, channel, qty, 60_000, uuid.uuid4().hex)
        return None
    except ReservationRefused as exc:
        return exc.code


def test_the_read_model_carries_max_line_qty_per_channel(client):
    engine, api = setup_nodes(client, "ML", {"A": 5, "B": 3})
    assert (api.available("ML", "web"), api.max_line_qty("ML", "web")) == (8, 5)
    assert (api.available("ML", "split"), api.max_line_qty("ML", "split")) == (8, 8)
    engine.feed(engine.ev.order("O1", [("ML", 2)], channel="web"))  # held at A: 3 left there
    assert (api.available("ML", "web"), api.max_line_qty("ML", "web")) == (6, 3)


def test_a_hold_above_max_line_qty_is_refused_where_lines_do_not_split(client):
    engine, api = setup_nodes(client, "LN", {"A": 5, "B": 3})
    before = int(client.hget(api.keys.stats_of("LN"), "line") or 0)
    assert refusal(api, "LN", "web", 6) == "LINE"  # 8 in all, but no node has 6
    assert int(client.hget(api.keys.stats_of("LN"), "line")) == before + 1
    assert refusal(api, "LN", "web", 9) == "SHORT"  # more than there is at all: short first
    assert refusal(api, "LN", "web", 2) is None
    assert refusal(api, "LN", "split", 6) is None  # a channel that splits lines takes it


def test_holds_not_yet_taken_in_count_against_one_line(client):
    """They may all land on the largest node; once the engine has placed them, the published
    max_line_qty says exactly what one line can still get."""
    engine, api = setup_nodes(client, "PEND", {"A": 5, "B": 4})
    assert refusal(api, "PEND", "web", 3) is None
    assert refusal(api, "PEND", "web", 3) == "LINE"  # 6 left in all; 5 - 3 sure at one node
    engine.feed(engine.ev.adjust("PEND", "A", 0))  # the engine takes the hold in
    assert refusal(api, "PEND", "web", 3) is None


def test_max_line_qty_is_never_published_above_availability(client):
    """reserve grants on max_line_qty alone, so a publish must never leave it above the
    channel's availability, whatever it is handed."""
    engine, api = setup_nodes(client, "CAP", {"A": 5})
    keys = api.keys.publish("CAP")
    view = '{"c": {"web": 2, "split": 4}, "l": {"web": 5, "mkt": 7}, "n": {}, "k": {}}'
    client.fcall("stockflow_publish", len(keys), *keys, view)
    assert api.max_line_qty("CAP", "web") == 2  # cut to what the channel has
    assert api.max_line_qty("CAP", "split") == 4  # kept (5 before), cut to fit
    assert api.max_line_qty("CAP", "mkt") == 0  # no availability published for it
    assert refusal(api, "CAP", "web", 3) == "SHORT"
    assert refusal(api, "CAP", "web", 2) is None


@pytest.mark.parametrize("seed", range(3))
def test_every_hold_granted_is_one_the_engine_can_place(client, seed):
    """Checkouts of random sizes on a channel that does not split lines, the engine taking
    them in now and then: no granted hold is dropped for want of one node to fill it."""
    rnd = random.Random(seed)
    sku = f"PLACE{seed}"
    engine, api = setup_nodes(client, sku, {"A": 6, "B": 5, "C": 4})
    granted = []
    for i in range(30):
        hold_id = f"h{i}"
        try:
            api.reserve(sku, "web", rnd.randint(1, 5), 60_000, hold_id)
            granted.append(hold_id)
        except ReservationRefused as exc:
            assert exc.code in ("SHORT", "LINE")
        if rnd.random() < 0.3:
            engine.feed(engine.ev.adjust(sku, "A", 0))
    engine.feed(engine.ev.adjust(sku, "A", 0))
    book = engine.book(sku)
    assert granted
    assert all(book.line(f"checkout:{h}", "1").status == HELD for h in granted)
    assert all(client.hget(api.keys.checkouts(sku), h) is not None for h in granted)


def test_reserve_with_the_v1_key_list_is_a_bad_argument(client):
    engine, api = setup_nodes(client, "OLD", {"A": 5})
    keys = api.keys.reserve("OLD")
    keys.remove(api.keys.max_line("OLD"))
    keys.remove(api.keys.due_of("OLD"))
    with pytest.raises(redis.ResponseError, match="STOCKFLOW_BADARG"):
        client.fcall("stockflow_reserve", len(keys), *keys, "web", 1, 60_000, "h")


def test_reserve_and_release_of_the_previous_version_still_hold_and_release(client):
    """The 8-key reserve and 3-key release (no due set, no sku) work as they did: the engine
    takes such a hold in with the SKU's next event, and sees its release as an expiry."""
    engine, api = setup_nodes(client, "V2", {"A": 5})
    keys = api.keys.reserve("V2")[:8]
    _, hold_id, _ = client.fcall("stockflow_reserve", 8, *keys, "web", 2, 60_000, "h2")
    assert hold_id == b"h2" and int(client.get(api.keys.pending("V2"))) == 2
    assert client.zscore(api.keys.due_of("V2"), "V2") is None  # nobody asked for an intake
    assert client.fcall("stockflow_release", 3, *api.keys.release("V2")[:3], "h2") == 1
    assert int(client.get(api.keys.pending("V2"))) == 0
    assert not client.smembers(api.keys.released("V2"))


def test_line_refusals_are_counted_for_metrics(client):
    from stockflow.ops.metrics import ReservationCollector

    engine, api = setup_nodes(client, "MET", {"A": 2, "B": 2})
    client.delete(*api.keys.stats)
    assert refusal(api, "MET", "web", 3) == "LINE"
    (family,) = ReservationCollector(client, api.keys.stats).collect()
    counts = {s.labels["result"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert counts["line"] == 1 and counts["short"] == 0


# -- Redis that comes back empty, and errors that are not outages ------------------------------


@pytest.fixture()
def private_redis():
    server = RedisServer()
    yield server
    server.stop()


def test_redis_back_empty_is_rebuilt_and_refuses_as_stale_until_whole(private_redis):
    client = redis.Redis.from_url(private_redis.url, socket_timeout=2)
    engine, api = setup_engine(client, 5, "LOST")
    assert api.available("LOST", "web") == 5
    private_redis.stop()
    private_redis.start()  # restarted without its data: no functions, no read model
    assert client.function_list() == []
    engine.store._down_until = 0.0
    engine.store.beat()  # finds its mark gone
    assert engine.store.losses == 1
    assert client.function_list()  # loaded again
    engine.store.beat()  # its mark is back, but the read model is not yet whole
    with pytest.raises(ReservationRefused) as refused:
        api.reserve("LOST", "web", 1, 60_000, "too-early")
    assert refused.value.code == "STALE"  # not "Function not found", not a grant on nothing
    engine.tick()  # every bucket rewrites its whole read model...
    engine.store.beat()  # ...and only then does the heartbeat say so
    assert api.available("LOST", "web") == 5
    assert try_reserve(api, "LOST", "web", 2) is not None


def test_functions_gone_mid_run_are_loaded_again(private_redis):
    client = redis.Redis.from_url(private_redis.url, socket_timeout=2)
    engine, api = setup_engine(client, 5, "FN")
    client.function_flush()
    engine.feed(engine.ev.adjust("FN", "A", -1))  # its publish meets "Function not found"
    assert engine.store.losses == 1 and client.function_list()
    engine.tick()
    engine.store.beat()
    assert api.available("FN", "web") == 4


def test_an_error_waiting_cannot_fix_stops_the_engine_in_one_line(private_redis):
    client = redis.Redis.from_url(private_redis.url, socket_timeout=2)
    engine, _ = setup_engine(client, 5, "WRONG")
    client.delete(engine.store.keys.avail("WRONG"))
    client.set(engine.store.keys.avail("WRONG"), "not a hash")
    outages = engine.store.outages
    with pytest.raises(RedisRefused, match="WRONGTYPE"):
        engine.feed(engine.ev.adjust("WRONG", "A", -1))
    assert engine.store.outages == outages  # not counted as an outage and ignored


def _nodes_in_redis(client, keys, sku) -> tuple[dict, dict]:
    atp = {k.decode(): int(v) for k, v in client.hgetall(keys.atp(sku)).items()}
    positions = {k.decode(): msgspec.msgpack.decode(v, type=NodePosition)
                 for k, v in client.hgetall(keys.position(sku)).items()}
    return atp, positions


def _nodes_in_book(engine, sku) -> tuple[dict, dict]:
    positions = node_positions(engine.book(sku))
    return {node: max(0, p.atp) for node, p in positions.items()}, positions


def test_node_atp_and_positions_in_redis_follow_the_book_though_only_moved_ones_are_sent(
        client):
    engine, api = setup_engine(client, 5, "NODES")
    e, keys = engine.ev, engine.store.keys
    engine.feed(e.node("B"), e.node("C"))
    engine.feed(e.snapshot("NODES", "B", 7), e.snapshot("NODES", "C", 2))
    assert _nodes_in_redis(client, keys, "NODES") == _nodes_in_book(engine, "NODES")
    for i, (node, delta) in enumerate([("B", -3), ("A", 4), ("B", 1), ("C", -2)]):
        engine.feed(e.adjust("NODES", node, delta))
        engine.feed(e.order(f"N{i}", [("NODES", 1)], paid=True))
        assert _nodes_in_redis(client, keys, "NODES") == _nodes_in_book(engine, "NODES")
    # Redis loses them while it is away: once back, every node is written again.
    client.delete(keys.atp("NODES"), keys.position("NODES"))
    good = engine.store.client
    engine.store.client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    engine.feed(e.adjust("NODES", "A", -1))
    engine.store.client = good
    engine.store._down_until = 0.0
    engine.tick()
    assert _nodes_in_redis(client, keys, "NODES") == _nodes_in_book(engine, "NODES")
