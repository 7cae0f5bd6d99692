"""`stockflow explain`: the candidates, ranks and winner of every sourcing of one order.

Small traces where the deciding rank is known, read back through the CLI (text and JSON);
then a property: over random catalogs, positions and lines, the ranking the explanation
shows gives exactly the nodes `source_line` chose.
"""

from __future__ import annotations

import json

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.ops.cli import main
from stockflow.state.book import SkuBook
from stockflow.state.config import DEFAULT_RANK
from stockflow.state.events import Channel, Node
from stockflow.state.explain import explain_sourcing, ranked_choice
from stockflow.state.lines import Line
from stockflow.state.master import Catalog
from stockflow.state.outputs import StatusReason
from stockflow.state.sourcing import source_line

from .scenario import BEIJING, GUANGZHOU, HANGZHOU, SHANGHAI, SHENZHEN, Script

SKU = "SKU-1"
REASONS = set(StatusReason.__args__)


def trace(tmp_path, *events) -> str:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(msgspec.json.encode(e) for e in events) + b"\n")
    return str(path)


def world(e: Script, *nodes, split=False, backorder=False, stock=None, channel_nodes=None):
    out = [*nodes, e.channel("web", channel_nodes, allow_split=split, backorder=backorder)]
    return out + [e.snapshot(SKU, node, qty) for node, qty in (stock or {}).items()]


def explained(capsys, path: str, order_id: str = "O1") -> dict:
    assert main(["explain", order_id, "--events", path, "--json", "--buckets", "2"]) == 0
    return json.loads(capsys.readouterr().out)


def sourcings(doc: dict, line: int = 0) -> list[dict]:
    return [s["sourcing"] for s in doc["lines"][line]["steps"] if "sourcing" in s]


def ranked(sourcing: dict) -> list[str]:
    return [n["node"] for n in sorted((n for n in sourcing["nodes"] if "rank" in n),
                                      key=lambda n: n["rank"])]


# -- the deciding rank ----------------------------------------------------------------------


def test_region_beats_distance(tmp_path, capsys):
    e = Script()
    path = trace(tmp_path, *world(
        e, e.node("OUT-OF-REGION", region="HongKong", at=(22.55, 114.07)),
        e.node("IN-REGION", region="Guangdong", at=GUANGZHOU),
        stock={"OUT-OF-REGION": 10, "IN-REGION": 10}),
        e.order("O1", [(SKU, 1)], paid=True, region="Guangdong", ship_to=SHENZHEN))
    (s,) = sourcings(explained(capsys, path))
    assert s["trigger"] == "placement"
    assert ranked(s) == ["IN-REGION", "OUT-OF-REGION"]
    assert s["decided_by"] == "region"
    assert s["parts"] == [["IN-REGION", 1]]
    near, far = sorted(s["nodes"], key=lambda n: n["distance_km"])
    assert (near["node"], near.get("same_region", False)) == ("OUT-OF-REGION", False)
    assert near["distance_km"] < 5 < far["distance_km"]
    assert (far["atp"], far["on_hand"], far["won"]) == (10, 10, 1)


def test_whole_line_beats_region_and_the_text_says_so(tmp_path, capsys):
    e = Script()
    path = trace(tmp_path, *world(
        e, e.node("LOCAL", region="Shanghai", at=SHANGHAI),
        e.node("REMOTE", region="Guangdong", at=GUANGZHOU),
        split=True, stock={"LOCAL": 2, "REMOTE": 5}),
        e.order("O1", [(SKU, 3)], region="Shanghai", ship_to=SHANGHAI))
    (s,) = sourcings(explained(capsys, path))
    assert ranked(s) == ["REMOTE", "LOCAL"]
    assert s["decided_by"] == "fills"
    assert s["parts"] == [["REMOTE", 3]]
    assert main(["explain", "O1", "--events", path]) == 0
    text = capsys.readouterr().out
    assert "won: REMOTE 3 (decided by: fills the line; runner-up LOCAL)" in text
    assert "status: held at REMOTE 3" in text


def test_split_when_the_channel_allows_it(tmp_path, capsys):
    e = Script()
    path = trace(tmp_path, *world(
        e, e.node("FAR", region="Beijing", at=BEIJING),
        e.node("MID", region="Guangdong", at=GUANGZHOU),
        e.node("NEAR", region="Zhejiang", at=HANGZHOU),
        split=True, stock={"FAR": 5, "MID": 3, "NEAR": 2}),
        e.order("O1", [(SKU, 6)], paid=True, region="Zhejiang", ship_to=HANGZHOU))
    doc = explained(capsys, path)
    (s,) = sourcings(doc)
    assert ranked(s) == ["NEAR", "MID", "FAR"]  # none fills 6: region, then distance
    assert s["decided_by"] == "split"
    assert s["parts"] == [["NEAR", 2], ["MID", 3], ["FAR", 1]]
    (step,) = doc["lines"][0]["steps"]
    assert [(x["status"], x["node"], x["qty"]) for x in step["statuses"]] == [
        ("allocated", "NEAR", 2), ("allocated", "MID", 3), ("allocated", "FAR", 1)]


def test_no_split_allowed_is_the_reason_when_the_nodes_together_would_fill(tmp_path, capsys):
    e = Script()
    path = trace(tmp_path, *world(
        e, e.node("A"), e.node("B", region="Guangdong", at=GUANGZHOU),
        stock={"A": 2, "B": 2}),
        e.order("O1", [(SKU, 3)], paid=True))
    doc = explained(capsys, path)
    (s,) = sourcings(doc)
    assert s["parts"] is None and s["unfilled"] == "split_not_allowed"
    assert [n.get("fills", False) for n in s["nodes"]] == [False, False]
    (step,) = doc["lines"][0]["steps"]
    assert [(x["status"], x["reason"]) for x in step["statuses"]] == [
        ("rejected", "split_not_allowed")]


def test_ineligible_nodes_say_why(tmp_path, capsys):
    e = Script()
    path = trace(tmp_path,
                 e.node("DC"), e.node("OFF", active=False), e.node("ELSEWHERE"),
                 e.node("STORE", kind="store", can_ship=False, can_pickup=True),
                 e.node("COUNTER", kind="store", can_ship=False, can_pickup=True),
                 e.node("NO-COUNTER", kind="store", can_pickup=False),
                 e.channel("web", ["DC", "OFF", "STORE", "COUNTER", "NO-COUNTER"]),
                 *(e.snapshot(SKU, n, 5) for n in ("DC", "OFF", "STORE", "COUNTER")),
                 e.order("O1", [(SKU, 1)]),
                 e.order("O2", [(SKU, 1)], pickup_node="NO-COUNTER"))
    (s,) = sourcings(explained(capsys, path, "O1"))
    why = {n["node"]: n.get("ineligible") for n in s["nodes"]}
    assert why == {"DC": None, "OFF": "inactive", "ELSEWHERE": "not_in_channel",
                   "STORE": "cannot_ship", "COUNTER": "cannot_ship", "NO-COUNTER": None}
    assert s["parts"] == [["DC", 1]] and s["decided_by"] == "only_candidate"
    (s,) = sourcings(explained(capsys, path, "O2"))
    why = {n["node"]: n.get("ineligible") for n in s["nodes"]}
    assert why["STORE"] == why["COUNTER"] == why["DC"] == "not_pickup_store"
    assert why["NO-COUNTER"] == "no_pickup_counter"
    assert s["unfilled"] == "no_eligible_node"


def test_every_later_sourcing_is_explained_in_order(tmp_path, capsys):
    """Backordered at first, filled when stock comes, moved by a shortage, then paid."""
    e = Script()
    path = trace(tmp_path, *world(
        e, e.node("A"), e.node("B", region="Guangdong", at=GUANGZHOU), backorder=True),
        e.order("O1", [(SKU, 2)]),
        e.snapshot(SKU, "A", 3),
        e.snapshot(SKU, "B", 4),
        e.snapshot(SKU, "A", 0),
        e.paid("O1"))
    doc = explained(capsys, path)
    steps = doc["lines"][0]["steps"]
    assert [(s["event"], s["sourcing"]["trigger"] if "sourcing" in s else None,
             [(x["status"], x.get("node"), x.get("reason")) for x in s["statuses"]])
            for s in steps] == [
        ("order.created", "placement", [("backordered", None, "no_stock")]),
        ("stock.snapshot", "backorder_fill", [("held", "A", "backorder_filled")]),
        ("stock.snapshot", "shortage", [("held", "B", "moved_by_shortage")]),
        ("order.paid", None, [("allocated", "B", None)]),
    ]
    shortage = steps[2]["sourcing"]
    assert {n["node"]: n.get("ineligible") for n in shortage["nodes"]}["A"] == "shortage_node"
    assert main(["explain", "O1", "--events", path]) == 0
    text = capsys.readouterr().out
    assert "  shortage of 2 at " in text and "not candidates: shortage node: A" in text


def test_an_order_not_in_the_trace_is_one_line(tmp_path, capsys):
    e = Script()
    path = trace(tmp_path, *world(e, e.node("A"), stock={"A": 1}), e.order("O1", [(SKU, 1)]))
    assert main(["explain", "O-404", "--events", path]) == 1
    err = capsys.readouterr().err
    assert err == f"stockflow: error: order O-404 is not in {path}\n"
    assert main(["explain", "O1", "--events", str(tmp_path / "missing.jsonl")]) == 1
    assert capsys.readouterr().err.count("\n") == 1


# -- the explanation is the decision --------------------------------------------------------

REGIONS = ["Shanghai", "Guangdong", "Beijing"]
NODE_IDS = ["N0", "N1", "N2", "N3", "N4", "N5"]
UNTIL_MS = 10_000


@st.composite
def sourcing_cases(draw):
    catalog = Catalog()
    ids = draw(st.lists(st.sampled_from(NODE_IDS), min_size=2, max_size=6, unique=True))
    for node_id in ids:
        catalog.upsert_node(Node(
            id=node_id, kind=draw(st.sampled_from(["dc", "store"])),
            region=draw(st.sampled_from(REGIONS)),
            lat=draw(st.sampled_from([22.5, 23.1, 31.2, 39.9])),  # ties on distance happen
            lon=draw(st.sampled_from([113.3, 114.1, 121.5, 116.4])),
            can_ship=draw(st.sampled_from([True, True, True, False])),
            can_pickup=draw(st.booleans()),
            ship_cost=draw(st.one_of(st.none(), st.sampled_from([1.0, 2.5, 9.0]))),
            active=draw(st.sampled_from([True, True, True, False])),
        ))
    members = draw(st.one_of(st.just(["*"]), st.lists(st.sampled_from(ids), min_size=1,
                                                        unique=True)))
    catalog.upsert_channel(Channel(id="web", nodes=members, hold_ttl_s=60,
                                   allow_split=draw(st.booleans()), backorder=False))
    book = SkuBook()
    for node_id in draw(st.lists(st.sampled_from(ids), min_size=len(ids) // 2, unique=True)):
        pos = book.position(node_id)
        pos.on_hand = draw(st.integers(-2, 20))
        pos.held = draw(st.integers(0, 3))
        pos.allocated = draw(st.integers(0, 3))
        pos.safety_stock = draw(st.integers(0, 2))
        if draw(st.booleans()):
            pos.set_inbound("PO-1", draw(st.integers(1, 6)), draw(st.sampled_from([5_000, 50_000])),
                            "purchase_order")
            pos.advance(UNTIL_MS)
    pickup = draw(st.sampled_from([None] * 8 + ids))
    line = Line(order_id="O1", line_id="1", qty=draw(st.integers(1, 12)),
                channel=draw(st.sampled_from(["web"] * 9 + ["nowhere"])),
                region=draw(st.sampled_from(REGIONS)), lat=31.2, lon=121.5,
                fulfillment="pickup" if pickup else "ship", pickup_node=pickup, paid=True,
                seq=1, deadline_ms=None)
    exclude = draw(st.sampled_from([None] * 4 + ids))
    return line, book, catalog, exclude


@settings(max_examples=400, deadline=None)
@given(sourcing_cases(), st.permutations(DEFAULT_RANK))
def test_the_explained_ranking_gives_what_source_line_decided(case, rank):
    line, book, catalog, exclude = case
    rank = tuple(rank)  # any sourcing_rank a config may set
    parts = source_line(line, line.qty, book, catalog, UNTIL_MS, exclude, rank)
    s = explain_sourcing(line, line.qty, book, catalog, UNTIL_MS, exclude, parts, rank=rank)
    assert ranked_choice(s) == parts
    ranks = [v.rank for v in s.nodes if v.rank is not None]
    assert ranks == list(range(1, len(ranks) + 1))  # ranked candidates come first, in order
    assert {v.node for v in s.nodes if v.won} == {node for node, _ in parts or ()}
    if parts is not None and len(parts) == 1 and rank[0] == "whole_line":
        assert s.nodes[0].node == parts[0][0] and s.nodes[0].fills
    if parts is None:
        assert s.unfilled in REASONS
        if s.unfilled == "split_not_allowed":
            candidates = [v for v in s.nodes if v.rank is not None]
            assert not any(v.fills for v in candidates)
            assert sum(v.atp for v in candidates) >= line.qty
