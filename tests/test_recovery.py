"""The recovery store at start (ops/recovery.py), against a real broker: each process makes
only its own partition, a partition the broker's marks say was made is never made again
empty, a grown cluster learns the store's shape, and buckets are chosen once for growth."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockflow.connectors import recovery_marks
from stockflow.connectors.kafka_admin import create_topics, input_topics, output_topics
from stockflow.ops.config import load
from stockflow.ops.recovery import STARTED, Shape, StoreRefused, prepare

from .servers import unique_prefix


def config_for(brokers: str, prefix: str, directory: Path, **engine):
    env = {"STOCKFLOW_KAFKA_BROKERS": brokers, "STOCKFLOW_KAFKA_TOPIC_PREFIX": prefix,
           "STOCKFLOW_RECOVERY_DIR": str(directory)}
    env.update({f"STOCKFLOW_ENGINE_{k.upper()}": str(v) for k, v in engine.items()})
    return load(None, env)


def parts(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("part-*.sqlite3"))


@pytest.fixture
def prefix(kafka_brokers) -> str:
    prefix = unique_prefix()
    create_topics(kafka_brokers, input_topics(prefix) + output_topics(prefix), 1)
    return prefix


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(processes=st.integers(1, 6), buckets=st.integers(1, 20))
def test_every_partition_is_made_once_across_the_hosts(kafka_brokers, processes, buckets):
    prefix = unique_prefix()
    create_topics(kafka_brokers, input_topics(prefix) + output_topics(prefix), 1)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / f"host-{i}" for i in range(processes)]
        shapes = {prepare(config_for(kafka_brokers, prefix, d, buckets=buckets), processes, i,
                          False)[1] for i, d in enumerate(dirs)}
        assert shapes == {Shape(processes, max(buckets, 2 * processes))}
        assert [parts(d) for d in dirs] == [[f"part-{i}.sqlite3"] for i in range(processes)]
        marks = recovery_marks.read_marks(kafka_brokers, prefix)
        assert sorted(marks) == list(range(processes))
        # and again: every host resumes what it holds, nothing is made twice
        for i, d in enumerate(dirs):
            prepare(config_for(kafka_brokers, prefix, d, buckets=buckets), processes, i, False)
        assert [parts(d) for d in dirs] == [[f"part-{i}.sqlite3"] for i in range(processes)]


def test_a_lost_partition_is_refused_and_from_scratch_makes_a_new_store(kafka_brokers, prefix,
                                                                        tmp_path):
    store = tmp_path / "recovery"
    config = config_for(kafka_brokers, prefix, store)
    prepare(config, 2, None, False)  # `--processes 2` on one host: both partitions here
    assert parts(store) == ["part-0.sqlite3", "part-1.sqlite3"]
    (store / "part-1.sqlite3").unlink()
    for from_scratch in (False, True):  # a partial copy: never completed with an empty part
        with pytest.raises(StoreRefused, match=r"holds partitions \[0\] but not \[1\]"):
            prepare(config, 2, None, from_scratch)
    (store / "part-0.sqlite3").unlink()
    with pytest.raises(StoreRefused, match=r"lacks partition 0 of 2, made on .*--from-scratch"):
        prepare(config, 2, None, False)
    shutil.rmtree(store)
    with pytest.raises(StoreRefused, match="lacks partition 0 of 2"):
        prepare(config, 2, None, False)  # the whole directory lost: the marks still know
    _, shape = prepare(config, 3, None, True)  # replayed into a new store, on 3 processes
    assert shape == Shape(3, 8) and len(parts(store)) == 3
    assert recovery_marks.read_marks(kafka_brokers, prefix)[2].partitions == 3
    shutil.rmtree(store)
    _, shape = prepare(config, 1, None, True)  # and again, on one: the old marks past it go
    assert shape == Shape(1, 8)
    assert sorted(recovery_marks.read_marks(kafka_brokers, prefix)) == [0]
    assert prepare(config, 1, None, False)[1] == Shape(1, 8)


def test_a_host_kept_from_an_older_store_is_refused(kafka_brokers, prefix, tmp_path):
    """Host b replayed from scratch into a new store while host a kept the old one: the
    two cannot resume together, and host a is told so."""
    from confluent_kafka import Producer

    a, b = tmp_path / "a", tmp_path / "b"
    for i, d in enumerate((a, b)):
        prepare(config_for(kafka_brokers, prefix, d), 2, i, False)
    producer = Producer({"bootstrap.servers": kafka_brokers})
    producer.produce(prefix + "dispatch", b"{}")  # the old store's cluster wrote commands
    assert producer.flush(10) == 0
    shutil.rmtree(b)
    prepare(config_for(kafka_brokers, prefix, b), 2, 1, True)
    with pytest.raises(StoreRefused, match=r"holds partitions of an older store than "
                                           r"partition 1, made on .* --from-scratch too"):
        prepare(config_for(kafka_brokers, prefix, a), 2, 0, False)
    shutil.rmtree(a)  # as the README says: every directory aside, every host from scratch
    assert prepare(config_for(kafka_brokers, prefix, a), 2, 0, True)[1] == Shape(2, 8)
    assert prepare(config_for(kafka_brokers, prefix, b), 2, 1, False)[1] == Shape(2, 8)
    assert prepare(config_for(kafka_brokers, prefix, a), 2, 0, False)[1] == Shape(2, 8)


def test_a_process_joining_a_grown_cluster_holds_no_partition(kafka_brokers, prefix, tmp_path):
    for i in range(2):
        prepare(config_for(kafka_brokers, prefix, tmp_path / f"h{i}"), 2, i, False)
    newcomer = tmp_path / "h2"
    _, shape = prepare(config_for(kafka_brokers, prefix, newcomer), 3, 2, False)
    assert shape == Shape(2, 8)  # the store's, not a new one's
    assert newcomer.is_dir() and parts(newcomer) == []


def test_buckets_are_fixed_for_a_stores_life(kafka_brokers, prefix, tmp_path, capsys):
    store = tmp_path / "recovery"
    _, shape = prepare(config_for(kafka_brokers, prefix, store), 6, None, False)
    assert shape == Shape(6, 12)  # two per process: room to double
    _, again = prepare(config_for(kafka_brokers, prefix, store, buckets=4), 6, None, False)
    assert again.buckets == 12  # the store's count is what the engine uses
    with pytest.raises(StoreRefused, match="has 12 ledger buckets but .* asks for 16"):
        prepare(config_for(kafka_brokers, prefix, store, buckets=16), 6, None, False)
    prepare(config_for(kafka_brokers, prefix, store), 13, 0, False)
    said = capsys.readouterr().err
    assert "13 processes share 12 ledger buckets: at least 1 apply no ledger" in said


def test_a_store_from_before_the_marks_gets_them(kafka_brokers, prefix, tmp_path):
    store = tmp_path / "recovery"
    prepare(config_for(kafka_brokers, prefix, store), 1, None, False)
    other = unique_prefix()  # the same store, a broker that never saw its marks
    create_topics(kafka_brokers, input_topics(other) + output_topics(other), 1)
    (store / STARTED).write_text("")  # as stores from before wrote it
    _, shape = prepare(config_for(kafka_brokers, other, store), 1, None, False)
    assert shape == Shape(1, 8)
    assert sorted(recovery_marks.read_marks(kafka_brokers, other)) == [0]
