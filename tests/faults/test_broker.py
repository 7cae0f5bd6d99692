"""The broker dies mid-run and comes back empty (in memory, as a Kafka without volumes): the
engine stops with one clear line instead of hanging, and will not resume at offsets the new
broker never had."""

from __future__ import annotations

import time

from stockflow.ops.bench.kafka_runs import topic_of

from ..live_runs import LAYOUT, LiveRun, generated_trace
from ..servers import start_tansu, unique_prefix
from .figures import FIGURES


def test_a_broker_lost_is_a_clear_stop_and_a_refused_resume(redis_url, tmp_path):
    broker = start_tansu()
    port = int(broker.brokers.rsplit(":", 1)[1])
    trace = generated_trace(tmp_path, events=6_000, seed=31, skus=150, stores=6)
    lines = [line for line in trace.read_bytes().splitlines() if line.strip()]
    run = LiveRun(broker.brokers, redis_url, unique_prefix(), tmp_path)
    run.env["STOCKFLOW_KAFKA_DELIVERY_TIMEOUT_S"] = "5"
    run.create_topics(LAYOUT)
    run.produce(lines[:4000], topic_of)
    proc = run.start()
    try:
        deadline = time.monotonic() + 60
        while run.written() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        broker.stop()
        lost_at = time.monotonic()
        broker = start_tansu(port=port)  # the same address, nothing in it
        run.create_topics(LAYOUT)
        run.produce(lines[4000:], topic_of)
        code = proc.wait(timeout=60)
        stopped_s = time.monotonic() - lost_at
        said = run.log().strip().splitlines()[-1]
        again = run.start()
        refused = again.wait(timeout=60)
        refusal = run.log().strip().splitlines()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
        broker.stop()
    FIGURES.add("broker lost, back empty", stopped_after_s=round(stopped_s, 1),
                exit_code=code, said=said.removeprefix("stockflow: error: ")[:90] + "...",
                restart_refused=refused == 1)
    assert code == 1 and said.startswith("stockflow: error: "), said
    assert stopped_s < 40
    assert refused == 1 and "the broker lost data" in refusal, refusal


def test_sigterm_with_the_broker_gone_stops_at_once(redis_url, tmp_path):
    broker = start_tansu()
    trace = generated_trace(tmp_path, events=6_000, seed=32, skus=150, stores=6)
    run = LiveRun(broker.brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics(LAYOUT)
    run.produce([line for line in trace.read_bytes().splitlines() if line.strip()], topic_of)
    proc = run.start()
    try:
        while run.written() == 0 and proc.poll() is None:
            time.sleep(0.05)
    finally:
        broker.stop()
    time.sleep(1)  # outputs now wait on a broker that is not there
    asked = time.monotonic()
    proc.terminate()
    code = proc.wait(timeout=30)
    took = time.monotonic() - asked
    FIGURES.add("SIGTERM with the broker gone", stopped_after_s=round(took, 2), exit_code=code)
    assert code == 0 and took < 5
    [stop] = [line for line in run.log().splitlines() if " event=stop " in line]
    assert ' reason=SIGTERM graceful=' in stop and 'next_start="resumes from the last ' \
        'snapshot"' in stop, stop
