"""Checkouts racing marketplace orders on a live two-process engine that is killed with
SIGKILL at random moments: the outputs, repeats dropped, are those of a replay of what Kafka
recorded (the inputs and the engine's checkout-intake journal), and nothing is over-committed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import redis

from stockflow.connectors.reservations import ReservationRefused, Reservations
from stockflow.connectors.recorded_input import read_partitions
from stockflow.ops.bench.kafka_runs import ordered_skus, topic_of
from stockflow.connectors.kafka_admin import journal_topic

from ..live_runs import LAYOUT, LiveRun, generated_trace
from ..servers import unique_prefix
from .figures import FIGURES
from .judge import judge

CHANNELS = ("tmall", "jd", "douyin-live", "wechat")


class Checkouts(threading.Thread):
    """Checkouts holding, releasing and letting expire units of `skus` until stopped."""

    def __init__(self, redis_url: str, prefix: str, skus: list[str], seed: int):
        super().__init__(daemon=True)
        self.api = Reservations(redis.Redis.from_url(redis_url, socket_timeout=5), prefix,
                                busy_wait_s=0.05)
        self.skus, self.rnd = skus, random.Random(seed)
        self.stopping = threading.Event()
        self.results: Counter = Counter()

    def run(self) -> None:
        held: list[tuple[str, str]] = []
        while not self.stopping.is_set():
            rnd = self.rnd
            if held and rnd.random() < 0.4:
                sku, hold_id = held.pop(rnd.randrange(len(held)))
                self.results["released" if self.api.release(sku, hold_id) else "gone"] += 1
            else:
                sku, hold_id = rnd.choice(self.skus), uuid.uuid4().hex
                try:  # some run out before their release, some are never released
                    self.api.reserve(sku, rnd.choice(CHANNELS), rnd.randint(1, 3),
                                     rnd.choice((300, 1500, 60_000)), hold_id)
                    held.append((sku, hold_id))
                    self.results["granted"] += 1
                except ReservationRefused as exc:
                    self.results[exc.code.lower()] += 1
            time.sleep(rnd.uniform(0.001, 0.005))


def start_cluster(run: LiveRun, *args: str) -> subprocess.Popen:
    """`stockflow run -p 2` in a session of its own, so that its whole process group can be
    killed as a container's end kills it (its workers, in groups of their own, die with it)."""
    log = open(run.workdir / f"run-{time.monotonic_ns()}.log", "w+b")
    return subprocess.Popen([sys.executable, "-m", "stockflow.ops.cli", "run", "-p", "2", *args],
                            env=run.env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_checkouts_racing_orders_through_kill_9_decide_as_the_replay(kafka_brokers, redis_url,
                                                                      tmp_path, full):
    rounds, kills = (3, 5) if full else (1, 2)
    rnd = random.Random(2027)
    landed = survived = 0
    totals: Counter = Counter()
    for r in range(rounds):
        work = tmp_path / f"round-{r}"
        work.mkdir()
        trace = generated_trace(work, events=8_000, seed=300 + r, skus=60, stores=4)
        lines = [line for line in trace.read_bytes().splitlines() if line.strip()]
        run = LiveRun(kafka_brokers, redis_url, unique_prefix(), work)
        run.env["STOCKFLOW_KAFKA_BATCH_SIZE"] = "50"  # many small epochs
        run.create_topics(LAYOUT)
        checkouts = Checkouts(redis_url, run.prefix.rstrip("."), busiest_skus(lines, 8), r)
        checkouts.start()
        half = len(lines) // 2
        run.produce(lines[:half], topic_of)
        here = 0
        for k in range(kills):
            proc = start_cluster(run)
            written = run.written()
            if k == kills // 2:
                run.produce(lines[half:], topic_of)  # orders keep coming, now racing checkouts
            while proc.poll() is None and run.written() < written + rnd.randint(200, 1200):
                time.sleep(0.01)
            time.sleep(rnd.random() * 0.2)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                here += 1
            proc.wait()
        proc = start_cluster(run)  # takes in what the checkouts still change, then stops
        time.sleep(1.0)
        checkouts.stopping.set()
        checkouts.join()
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        run.drain("-p", "2")
        taken = [v for vs in read_partitions(kafka_brokers, [journal_topic(run.prefix)]).values()
                 for v in vs]
        figures = judge(run)
        assert checkouts.results["granted"] and taken, (checkouts.results, len(taken))
        clean = (figures["lines_lost"] == figures["effects_lost"] ==
                 figures["effects_duplicated"] == figures["over_committed"] == 0
                 and figures["availability_as_replay"])
        landed += here
        survived += here if clean else 0
        totals.update({k: v for k, v in figures.items() if not isinstance(v, bool)})
        totals.update(checkouts.results)
        totals["intakes_journalled"] += len(taken)
    FIGURES.add("kill -9 with checkouts racing orders (2 processes)",
                kill_points_survived=f"{survived}/{landed}",
                holds_granted=totals["granted"], holds_released=totals["released"],
                intakes_journalled=totals["intakes_journalled"],
                effects_lost=totals["effects_lost"],
                effects_duplicated=totals["effects_duplicated"],
                over_committed=totals["over_committed"])
    assert landed >= rounds * kills // 2, f"only {landed} kills landed mid-run"
    assert survived == landed, totals


def busiest_skus(lines: list[bytes], n: int) -> list[str]:
    """The SKUs most order lines of the trace ask for."""
    return [sku for sku, _ in ordered_skus(lines).most_common(n)]
