"""The Kafka sink against a real broker that goes away: it gives up in bounded time with
one clear error, and a stop signal is never held up by its waits."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from stockflow.connectors.kafka_admin import create_topics
from stockflow.connectors.kafka_sink import KafkaSinkError, KafkaStreamSink

from .servers import free_port, start_tansu, unique_prefix

QUIET = {"log_level": "0"}  # librdkafka's connection errors are expected here


def test_sink_gives_up_within_its_timeout_once_the_broker_is_gone():
    tansu = start_tansu()
    try:
        prefix = unique_prefix()
        create_topics(tansu.brokers, [prefix + "dispatch"], partitions=1)
        part = KafkaStreamSink(tansu.brokers, prefix, QUIET,
                               delivery_timeout_s=3).build("out", 0, 1)
        part.write_batch([("dispatch", [b'{"sku":"A"}'])])  # acknowledged, or it raises
        tansu.process.kill()
        tansu.process.wait()

        started = time.monotonic()
        with pytest.raises(KafkaSinkError) as raised:
            part.write_batch([("dispatch", [b'{"sku":"B"}', b'{"sku":"C"}'])])
        assert 3 <= time.monotonic() - started < 5
        assert str(raised.value).startswith(
            f"kafka broker {tansu.brokers} did not acknowledge 2 message(s) within 3 s")

        started = time.monotonic()
        part.close()
        assert time.monotonic() - started < 1
    finally:
        tansu.stop()


def test_sink_gives_up_when_its_local_queue_stays_full(caplog):
    nobody = f"127.0.0.1:{free_port()}"
    config = {"queue.buffering.max.messages": "1", **QUIET}
    part = KafkaStreamSink(nobody, client_config=config, delivery_timeout_s=1).build("out", 0, 1)

    with pytest.raises(KafkaSinkError, match=rf"kafka broker {nobody} did not acknowledge "
                                             r"3 message\(s\) within 1 s"):
        part.write_batch([("alerts", [b"{}"] * 3)])
    part.close()
    said = _delivery_failures(caplog)
    assert [(r.brokers, r.undelivered, r.timeout_s) for r in said] == [(nobody, 3, 1)]


def test_failed_deliveries_name_the_broker_and_count_the_messages(caplog):
    nobody = f"127.0.0.1:{free_port()}"
    config = {"message.timeout.ms": "1000", **QUIET}
    part = KafkaStreamSink(nobody, client_config=config).build("out", 0, 1)

    with pytest.raises(KafkaSinkError, match=rf"kafka delivery failed for topic "
                                             rf"stockflow.dispatch on {nobody}: .* \(2 message"):
        part.write_batch([("dispatch", [b'{"sku":"A"}', b'{"sku":"B"}'])])
    part.close()
    said = _delivery_failures(caplog)
    assert [(r.brokers, r.topic, r.undelivered) for r in said] == [
        (nobody, "stockflow.dispatch", 2)]


def _delivery_failures(caplog) -> list:
    """The sink's log lines: one per failed batch, at error level."""
    return [r for r in caplog.records if r.name == "stockflow.connectors.kafka_sink"
            and r.getMessage() == "delivery_failed" and r.levelname == "ERROR"]


def test_a_stop_signal_interrupts_the_wait_for_the_broker_at_once():
    nobody = f"127.0.0.1:{free_port()}"
    part = KafkaStreamSink(nobody, client_config=QUIET, delivery_timeout_s=30).build("out", 0, 1)
    signalled: list[float] = []

    def stop(signum, frame):  # what live mode does on SIGTERM
        signalled.append(time.monotonic())
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            part.write_batch([("dispatch", [b'{"sku":"A"}'])])
        assert time.monotonic() - signalled[0] < 0.5
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    part.close()


def test_delivery_timeout_must_be_positive():
    with pytest.raises(ValueError, match="delivery_timeout_s must be > 0"):
        KafkaStreamSink("127.0.0.1:9092", delivery_timeout_s=0)
