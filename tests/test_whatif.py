"""`stockflow whatif`: one small trace replayed under policies whose effect is known in
advance, the figures each gets, and the one-line errors of a bad policy."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.ops.cli import main
from stockflow.ops.whatif.policy import ChannelOverride, NodeOverride, Policy
from stockflow.ops.whatif.rewrite import read_facts, rewrite
from stockflow.state.geo import haversine_km

from .scenario import GUANGZHOU, SHANGHAI, Script

ENCODE = msgspec.json.Encoder().encode
SHANGHAI_TO_GUANGZHOU = haversine_km(*SHANGHAI, *GUANGZHOU)


def small_trace(path: Path) -> Path:
    """Two nodes, channel `web` that splits; three paid orders shipped to Shanghai.

    SKU-1: 2 at SH (Shanghai), 2 at GZ (Guangzhou). O1 wants 3: only a split fills it (SH 2
    + GZ 1), and then O2's 1 comes from GZ. Without splits O1 is rejected and O2 is served
    in Shanghai. SKU-2: 5 at SH, with a safety stock of 2; O3 wants 1 of it.
    """
    e = Script()
    events = [
        e.node("SH", region="Shanghai", at=SHANGHAI),
        e.node("GZ", region="Guangdong", at=GUANGZHOU),
        e.channel("web", allow_split=True),
        e.policy("SKU-2", "SH", safety_stock=2),
        e.snapshot("SKU-1", "SH", 2), e.snapshot("SKU-1", "GZ", 2), e.snapshot("SKU-2", "SH", 5),
        e.order("O1", [("SKU-1", 3)], paid=True),
        e.order("O2", [("SKU-1", 1)], paid=True),
        e.order("O3", [("SKU-2", 1)], paid=True),
    ]
    path.write_bytes(b"".join(ENCODE(ev) + b"\n" for ev in events) + b"{not json\n")
    return path


def policy(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def whatif(tmp_path: Path, *policies: str, flags: tuple[str, ...] = ()) -> dict:
    """Runs the command; returns its JSON, columns by name."""
    out = tmp_path / "figures.json"
    args = ["whatif", str(tmp_path / "trace.jsonl"), "--json", str(out), "-q",
            "--out", str(tmp_path / "runs"), *flags]
    for p in policies:
        args += ["--policy", p]
    assert main(args) == 0
    return {c["name"]: c for c in json.loads(out.read_text())["columns"]}


def test_without_splits_the_split_rate_is_zero_and_more_lines_are_rejected(tmp_path):
    small_trace(tmp_path / "trace.jsonl")
    split = policy(tmp_path, "split", '[channels.web]\nallow_split = true\n')
    whole = policy(tmp_path, "whole", '[channels."*"]\nallow_split = false\n')
    cols = whatif(tmp_path, split, whole, flags=("--no-recorded",))
    assert list(cols) == ["split", "whole"]
    s, w = cols["split"]["figures"], cols["whole"]["figures"]
    assert s["lines"] == w["lines"] == 3
    assert s["fill_rate"] == 1.0 and w["fill_rate"] == pytest.approx(2 / 3)
    assert s["split_rate"] == pytest.approx(1 / 3) and w["split_rate"] == 0.0
    assert s["oversold_paid_lines"] == 0 and w["oversold_paid_lines"] == 1
    assert not any(k.startswith("rejected_") and v for k, v in s.items())
    assert w["rejected_split_not_allowed"] == 1  # the two nodes together would fill it
    # Split: units SH 2 + GZ 1 (O1), GZ 1 (O2), SH 1 (O3): 2 of 5 units cross regions.
    assert s["cross_region_share"] == pytest.approx(2 / 5) and w["cross_region_share"] == 0.0
    assert s["mean_distance_km"] == pytest.approx(2 * SHANGHAI_TO_GUANGZHOU / 5)
    assert w["mean_distance_km"] == 0.0
    assert s["shipments_per_order"] == pytest.approx(4 / 3) and w["shipments_per_order"] == 1.0
    assert cols["whole"]["vs_first"]["fill_rate"] == pytest.approx(2 / 3 - 1)
    assert cols["whole"]["events_changed"] == 1  # the channel, nothing else


def test_a_deactivated_node_is_never_allocated_and_the_recorded_trace_comes_first(tmp_path):
    small_trace(tmp_path / "trace.jsonl")
    cols = whatif(tmp_path, policy(tmp_path, "no-gz", "[nodes.GZ]\nactive = false\n"))
    assert list(cols) == ["as recorded", "no-gz"]
    assert cols["as recorded"]["policy"] is None
    assert cols["as recorded"]["figures"]["fill_rate"] == 1.0  # as the split policy above
    assert cols["no-gz"]["figures"]["fill_rate"] == pytest.approx(2 / 3)
    dispatch = tmp_path / "runs" / "no-gz" / "out" / "dispatch.jsonl"
    nodes = {json.loads(line)["node"] for line in dispatch.read_text().splitlines()}
    assert nodes == {"SH"}


def test_the_trace_as_recorded_comes_first_with_any_number_of_policies(tmp_path, capsys):
    small_trace(tmp_path / "trace.jsonl")
    split = policy(tmp_path, "split", '[channels.web]\nallow_split = true\n')
    whole = policy(tmp_path, "whole", '[channels."*"]\nallow_split = false\n')
    cols = whatif(tmp_path, split, whole)
    assert list(cols) == ["as recorded", "split", "whole"]
    assert cols["whole"]["vs_first"]["fill_rate"] == pytest.approx(2 / 3 - 1)
    capsys.readouterr()
    assert main(["whatif", str(tmp_path / "trace.jsonl"), "-q", "--policy", split,
                 "--policy", whole]) == 0
    header = [r for r in capsys.readouterr().out.splitlines() if "whole" in r]
    assert header and "as recorded" in header[0]


def test_safety_stock_default_and_scale(tmp_path):
    small_trace(tmp_path / "trace.jsonl")
    cols = whatif(tmp_path, policy(tmp_path, "guarded", "[safety_stock]\ndefault = 1\nscale = 2\n"))
    # SKU-1 keeps 1 back at each node: ATP 1 + 1 < 3 rejects O1, O2 gets SH's one. SKU-2's
    # own safety stock doubles to 4: ATP 1 still serves O3.
    figs = cols["guarded"]["figures"]
    assert figs["fill_rate"] == pytest.approx(2 / 3) and figs["rejected_no_stock"] == 1
    events = [json.loads(line) for line in
              (tmp_path / "runs" / "guarded" / "events.jsonl").read_text().splitlines()
              if line.startswith("{\"")]
    policies = {(e["sku"], e["node"]): e["safety_stock"] for e in events
                if e["type"] == "policy.upserted"}
    assert policies == {("SKU-1", "SH"): 1, ("SKU-1", "GZ"): 1, ("SKU-2", "SH"): 4}
    assert cols["guarded"]["events_changed"] == 3  # two added, one scaled


def test_the_sourcing_rank_of_a_policy_reaches_the_engine(tmp_path):
    small_trace(tmp_path / "trace.jsonl")
    keep = policy(tmp_path, "keep-region", 'sourcing.rank = ["region", "whole_line", '
                                           '"distance", "cost"]\n')
    cols = whatif(tmp_path, keep)
    assert cols["keep-region"]["engine"]["sourcing_rank"] == [
        "region", "whole_line", "distance", "cost"]
    assert cols["as recorded"]["engine"]["sourcing_rank"][0] == "whole_line"


def test_a_channels_supply_policy_decides_what_inbound_it_sells(tmp_path):
    """1 on hand at SH and a purchase order of 4 due tomorrow; a paid order for 3. As
    recorded every inbound counts (filled); half of the purchase order counts 2 (filled,
    promised for its ETA); on hand only, or a kind the policy does not list, rejects it."""
    e = Script()
    events = [e.node("SH", region="Shanghai", at=SHANGHAI), e.channel("web"),
              e.snapshot("SKU-3", "SH", 1),
              e.inbound("PO-1", "SKU-3", "SH", 4, eta_s=86400, kind="purchase_order"),
              e.order("O4", [("SKU-3", 3)], paid=True)]
    (tmp_path / "trace.jsonl").write_bytes(b"".join(ENCODE(ev) + b"\n" for ev in events))
    cols = whatif(
        tmp_path,
        policy(tmp_path, "half-po", "[channels.web.supply]\npurchase_order = { share = 0.5 }\n"),
        policy(tmp_path, "on-hand", '[channels."*"]\nsupply = {}\n'),
        policy(tmp_path, "transit", "[channels.web.supply]\nin_transit = {}\n"),
    )
    fill = {name: col["figures"]["fill_rate"] for name, col in cols.items()}
    assert fill == {"as recorded": 1.0, "half-po": 1.0, "on-hand": 0.0, "transit": 0.0}
    status = json.loads((tmp_path / "runs" / "half-po" / "out" / "order-status.jsonl")
                        .read_text().splitlines()[0])
    assert (status["status"], status["promised_at"]) == ("allocated", "2026-11-12T00:00:03Z")
    assert cols["on-hand"]["events_changed"] == 1  # the channel


def test_the_plot_is_a_png(tmp_path):
    small_trace(tmp_path / "trace.jsonl")
    png = tmp_path / "ratios.png"
    assert main(["whatif", str(tmp_path / "trace.jsonl"), "-q", "--plot", str(png),
                 "--policy", policy(tmp_path, "whole", '[channels."*"]\nallow_split = false\n'),
                 "--policy", policy(tmp_path, "no-gz", "[nodes.GZ]\nactive = false\n")]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_the_table_shows_differences_against_the_first_column(tmp_path, capsys):
    small_trace(tmp_path / "trace.jsonl")
    assert main(["whatif", str(tmp_path / "trace.jsonl"), "-q", "--policy",
                 policy(tmp_path, "whole", '[channels."*"]\nallow_split = false\n')]) == 0
    rows = capsys.readouterr().out.splitlines()
    (fill,) = [r for r in rows if "fill rate" in r]
    assert "100.00%" in fill and "66.67% (-33.33 pp)" in fill


@pytest.mark.parametrize("text, names", [
    ("[engine]\ninbound_horizon = 3\n", "inbound_horizon"),
    ("[engine]\ninbound_horizon_s = -1\n", "$.engine.inbound_horizon_s"),
    ('[channels.web]\nallow_split = "no"\n', "$.channels.web.allow_split"),
    ("[channels.webshop]\nbackorder = true\n", "[channels.webshop]"),
    ('[channels.web]\nnodes = ["SH", "XX"]\n', "'XX'"),
    ("[nodes.DC-9]\nactive = false\n", "[nodes.DC-9]"),
    ("[safety_stock]\ndefault = -2\n", "$.safety_stock.default"),
    ('[sourcing]\nrank = ["region", "cost"]\n', "rank"),
    ("[sourcing]\nrank = [\"region\",\n", "not valid TOML"),
    ("[stock]\nx = 1\n", "stock"),
    ("[channels.web.supply]\nboat = {}\n", "$.channels.web.supply"),
    ("[channels.web.supply]\nproduction = { share = 2 }\n", "$.channels.web.supply[...].share"),
])
def test_a_bad_policy_is_one_line_naming_the_file_and_the_setting(tmp_path, capsys, text, names):
    small_trace(tmp_path / "trace.jsonl")
    bad = policy(tmp_path, "bad", text)
    assert main(["whatif", str(tmp_path / "trace.jsonl"), "-q", "--policy", bad]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stockflow: error:")
    assert bad in err and names in err


def test_missing_files_and_twin_names_are_one_line(tmp_path, capsys):
    small_trace(tmp_path / "trace.jsonl")
    ok = policy(tmp_path, "p", "")
    (tmp_path / "other").mkdir()
    twin = str(tmp_path / "other" / "p.toml")
    Path(twin).write_text("")
    for args, says in (
        (["--policy", str(tmp_path / "nope.toml")], "cannot read policy"),
        (["--policy", ok, "--policy", twin], "two policies are named 'p'"),
    ):
        assert main(["whatif", str(tmp_path / "trace.jsonl"), "-q", *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err
    assert main(["whatif", str(tmp_path / "none.jsonl"), "-q", "--policy", ok]) == 1
    assert "no such trace file" in capsys.readouterr().err
    assert main(["whatif", str(tmp_path / "trace.jsonl")]) == 2  # --policy is required
    assert capsys.readouterr().err.count("\n") == 1


def set_fields(override) -> dict:
    """The fields an override sets."""
    return {k: v for k, v in msgspec.to_builtins(override).items() if v is not None}


channel_overrides = st.builds(
    ChannelOverride, hold_ttl_s=st.none() | st.floats(1, 1e6),
    allow_split=st.none() | st.booleans(), backorder=st.none() | st.booleans(),
    nodes=st.none() | st.sampled_from([["SH"], ["*"]]))
node_overrides = st.builds(
    NodeOverride, ship_cost=st.none() | st.floats(0, 100), active=st.none() | st.booleans(),
    can_ship=st.none() | st.booleans())


@settings(max_examples=50, deadline=None)
@given(channels=st.dictionaries(st.sampled_from(["web", "*"]), channel_overrides, max_size=2),
       nodes=st.dictionaries(st.sampled_from(["SH", "GZ"]), node_overrides, max_size=2))
def test_a_rewrite_changes_only_master_data_and_only_what_the_policy_gives(
        tmp_path_factory, channels, nodes):
    trace = small_trace(tmp_path_factory.mktemp("rw") / "trace.jsonl")
    p = Policy(channels=channels, nodes=nodes)
    out = trace.with_name("rewritten.jsonl")
    with open(out, "wb") as f:
        rewrite(str(trace), p, read_facts(str(trace)), f)
    before, after = trace.read_bytes().splitlines(), out.read_bytes().splitlines()
    assert len(before) == len(after)
    for old, new in zip(before, after):
        if not old.startswith(b"{\"type\":\"") or b"upserted" not in old.split(b",")[0]:
            assert new == old  # orders, stock, malformed lines: byte for byte
            continue
        old, new = json.loads(old), json.loads(new)
        if old["type"] == "channel.upserted":
            want = {**old["channel"]}
            for key in ("*", "web"):
                if key in channels:
                    want.update(set_fields(channels[key]))
            assert new["channel"] == want
        elif old["type"] == "node.upserted":
            want = {**old["node"], **set_fields(nodes.get(old["node"]["id"], NodeOverride()))}
            assert new["node"] == want
        else:
            assert new == old
