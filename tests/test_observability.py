"""Metrics, alert rules and the dashboard, checked with the real tools: Prometheus scraping a
live engine, promtool on the rules and on a scrape."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
import yaml

from stockflow.ops import metrics
from stockflow.ops.cli import main
from stockflow.state.book import SkuBook
from stockflow.state.events import ClockTick
from stockflow.state.lines import Line
from stockflow.state.master import Catalog
from stockflow.state.outputs import OrderStatus
from stockflow.state.sourcing import why_unfilled

from .live_runs import LiveRun
from .scenario import Script
from .servers import free_port, unique_prefix

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "ops" / "monitoring"
ENCODE = msgspec.json.Encoder().encode


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's prometheus package "
                    f"(apt-get install prometheus; `make test` does it as root)")
    return path


def unfillable_orders(n: int) -> list[bytes]:
    """Master data, 5 units of SKU-1, and `n` paid orders of 10 units on a channel without
    backorders: each is a paid line that cannot be allocated. Then one paid line that fits,
    and one on a channel the catalog does not know: rejected, but not oversold."""
    e = Script()
    events = [e.node("A"), e.channel("web", hold_ttl_s=60), e.snapshot("SKU-1", "A", 5)]
    events += [e.order(f"O{i}", [("SKU-1", 10)], paid=True) for i in range(n)]
    events += [e.order("OK", [("SKU-1", 2)], paid=True)]
    events += [e.order("LOST", [("SKU-1", 1)], channel="nowhere", paid=True)]
    return [ENCODE(ev) for ev in events]


OVERSELL = 'stockflow_oversold_lines_total{reason=~"no_stock|split_not_allowed|shortage|other"}'


def exported_names() -> set[str]:
    """Every sample name stockflow can export (families with their suffixes)."""
    families = [m for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")]
    names = set()
    for family in families:
        base = family._name
        kind = family._type
        if kind == "counter":
            names.add(base + "_total")
        elif kind == "histogram":
            names.update({base + "_bucket", base + "_sum", base + "_count"})
        else:
            names.add(base)
    names.add("stockflow_reservations_total")  # ReservationCollector, read from Redis
    return names


# -- rules and dashboard -------------------------------------------------------------------


def test_alert_rules_are_valid():
    proc = subprocess.run([tool("promtool"), "check", "rules", str(MONITORING / "alerts.yml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 9 rules found" in proc.stdout


def test_each_alert_fires_on_its_series_and_stays_silent_otherwise():
    proc = subprocess.run([tool("promtool"), "test", "rules", "alerts_test.yml"],
                          cwd=MONITORING, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]
    tests = (MONITORING / "alerts_test.yml").read_text()
    for rule in rules:
        assert f"alertname: {rule['alert']}" in tests, f"{rule['alert']} has no promtool test"


def test_every_query_names_a_metric_stockflow_exports():
    exported = exported_names() | {"up"}
    dashboard = json.loads((MONITORING / "grafana/dashboards/stockflow.json").read_text())
    rules = (MONITORING / "alerts.yml").read_text()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    for text in exprs + [rules]:
        for name in re.findall(r"\b(stockflow_[a-z_]+)", text):
            assert name in exported, f"{name} is not a metric stockflow exports"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("throughput", "latency", "oversell", "dead letters", "lag", "holds"):
        assert topic in titles


def test_compose_provisions_prometheus_and_grafana_from_these_files():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            local = volume.split(":")[0]
            assert (ROOT / local).exists(), f"{service} mounts {local}, which does not exist"
    scrape = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["stockflow:9464"]


def test_ticks_are_not_counted_as_input_events():
    """An idle live engine routes about a tick a second per quiet partition: the throughput
    series must read zero for it, and the ticks are counted apart."""
    e = Script()
    tick = ClockTick(event_id="t-1", ts=e.at(5))
    order = e.order("O1", [("SKU-1", 1)])
    ticks, created = metrics.CLOCK_TICKS._value, metrics.EVENTS.labels("order.created")._value
    before = ticks.get(), created.get()
    metrics.Observer().routed([tick, tick, order], [], 0, 0)
    assert (ticks.get() - before[0], created.get() - before[1]) == (2, 1)
    assert ("clock.tick",) not in metrics.EVENTS._metrics


def test_rejected_paid_lines_carry_a_bounded_reason():
    web = SimpleNamespace(channel="web")
    book = SimpleNamespace(line=lambda order_id, line_id: None if order_id == "GONE" else web)
    ledger = SimpleNamespace(emit=SimpleNamespace(oversold={"web": 3}), books={"SKU-1": book})

    def status(order_id, status="rejected", reason="no_stock", paid=True):
        return OrderStatus(ts=datetime(2026, 1, 1), cause="e", order_id=order_id, line_id="1",
                           sku="SKU-1", status=status, qty=1, reason=reason, paid=paid)

    outputs = [status("O1"), status("O2", reason="something_new"), status("GONE"),
               status("O3", paid=False), status("O4", status="backordered")]
    assert metrics.rejected_paid(ledger, outputs) == {("web", "no_stock"): 1,
                                                      ("web", "other"): 2}


def test_every_reason_the_engine_rejects_for_has_its_own_label():
    e = Script()
    catalog = Catalog()
    catalog.upsert_node(e.node("A").node)  # ships, no pickup counter
    catalog.upsert_node(e.node("B").node)
    catalog.upsert_channel(e.channel("web", ["A", "B"]).channel)  # does not split lines
    book = SkuBook()
    book.position("A").on_hand = book.position("B").on_hand = 1
    shapes = {"unknown_channel": dict(channel="nowhere"), "no_stock": dict(qty=3),
              "split_not_allowed": {}, "no_eligible_node": dict(pickup_node="A")}
    for reason, shape in shapes.items():
        line = Line(order_id="O", line_id="1", qty=shape.get("qty", 2),
                    channel=shape.get("channel", "web"), region="", lat=0.0, lon=0.0,
                    fulfillment="pickup" if "pickup_node" in shape else "ship",
                    pickup_node=shape.get("pickup_node"), paid=True, seq=0, deadline_ms=0)
        assert why_unfilled(line, book, catalog, 0) == reason
        assert metrics.reject_reason(reason) == reason
    assert metrics.reject_reason("shortage") == "shortage"


# -- replay ----------------------------------------------------------------------------------


def test_replay_writes_its_final_metrics(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(unfillable_orders(4)) + b"\n{not json\n")
    oversold = metrics.OVERSOLD.labels("web", "no_stock")._value
    unknown = metrics.OVERSOLD.labels("nowhere", "unknown_channel")._value
    before = oversold.get(), unknown.get()
    assert main(["replay", str(events), "--out", str(tmp_path / "out"),
                 "--metrics", str(tmp_path / "m.prom")]) == 0
    text = (tmp_path / "m.prom").read_text()
    check = subprocess.run([tool("promtool"), "check", "metrics"], input=text,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert (oversold.get() - before[0], unknown.get() - before[1]) == (4, 1)
    assert 'stockflow_oversold_lines_total{channel="web",reason="no_stock"}' in text
    assert 'stockflow_dead_letters_total{reason="not_json"}' in text


def test_a_refused_event_is_counted_as_a_dead_letter_by_its_reason(tmp_path):
    e = Script()
    refused = metrics.DEAD_LETTERS.labels("sku_not_in_order")._value
    before = refused.get()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(ENCODE(ev) for ev in [
        e.node("A"), e.channel("web", hold_ttl_s=60), e.snapshot("SKU-1", "A", 5),
        e.order("O1", [("SKU-1", 1)], paid=True),
        e.shipped("O1", "SKU-2", "A", 1),  # the order is of SKU-1 only
    ]) + b"\n")
    assert main(["replay", str(events), "--out", str(tmp_path / "out"), "--quiet",
                 "--metrics", str(tmp_path / "m.prom")]) == 0
    assert refused.get() - before == 1
    assert 'stockflow_dead_letters_total{reason="sku_not_in_order"} 1.0' in \
        (tmp_path / "m.prom").read_text()
    (dead,) = [json.loads(line) for line in (tmp_path / "out" / "dead-letter.jsonl").open()]
    assert (dead["reason"], dead["source"]) == ("sku_not_in_order", "engine")


# -- live, scraped by a real Prometheus ------------------------------------------------------


def query(prometheus: str, expr: str) -> float | None:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        result = json.load(r)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for(prometheus: str, expr: str, want: float, timeout: float = 60) -> float | None:
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        try:
            got = query(prometheus, expr)
        except OSError:
            got = None
        if got == want:
            return got
        time.sleep(0.5)
    return got


def test_prometheus_scrapes_a_live_engine_and_sees_the_oversell(kafka_brokers, redis_url,
                                                                 tmp_path):
    n = 7
    prometheus_bin, promtool = tool("prometheus"), tool("promtool")  # before anything starts
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    port = free_port()
    run.env["STOCKFLOW_RUN_METRICS_PORT"] = str(port)
    run.create_topics({})
    engine = run.start()
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "stockflow",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }))
    prometheus = subprocess.Popen(
        [prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp_path}/tsdb",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{prom_port}"
    try:
        assert wait_for(api, 'up{job="stockflow"}', 1.0) == 1.0, "Prometheus cannot scrape"
        assert wait_for(api, 'stockflow_reservations_total{result="granted"}', 0.0) == 0.0
        run.produce(unfillable_orders(n) + [b'{"type": "order.created"'])
        assert wait_for(api, "sum(stockflow_events_total)", n + 5.0) == n + 5.0
        assert wait_for(api, f"sum({OVERSELL})", n) == n
        assert query(api, 'sum(stockflow_oversold_lines_total{channel="web"})') == n
        assert query(api, 'sum(stockflow_oversold_lines_total{reason="no_stock"})') == n
        assert wait_for(api, 'sum(stockflow_oversold_lines_total{channel="nowhere",'
                             'reason="unknown_channel"})', 1.0) == 1.0
        assert query(api, f"sum({OVERSELL})") == n  # the unknown channel is not oversell
        assert wait_for(api, 'stockflow_dead_letters_total{reason="not_json"}', 1.0) == 1.0
        assert wait_for(api, 'stockflow_outputs_total{stream="dispatch"}', 1.0) == 1.0
        assert query(api, "stockflow_processing_latency_seconds_count") >= 1
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        check = subprocess.run([promtool, "check", "metrics"], input=scrape,
                               capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        prometheus.terminate()
        engine.terminate()
        prometheus.wait()
        engine.wait()
