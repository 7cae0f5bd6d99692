"""Live: Kafka input topics through the engine into Kafka output topics, with Redis beside.

    <prefix>master|stock|orders -> engine (see engine.py) -> <prefix><stream>
    clock ticks -> back into quiet input partitions (recorded, so replays see them too)

The heartbeat the reservation API trusts is written by the ledger buckets' timers (see
`LedgerLogic`), not by a polling input: a Bytewax input that wakes once a second lets the
worker sleep that long, and every Kafka partition waited with it.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from stockflow.connectors.clock_ticks import ClockTicker
from stockflow.connectors.kafka_admin import input_topics
from stockflow.connectors.kafka_sink import DELIVERY_TIMEOUT_S, KafkaStreamSink
from stockflow.connectors.kafka_source import KafkaChunkSource
from stockflow.state.config import EngineConfig

from .engine import engine
from .logic import AlignTiming


def live_flow(engine_config: EngineConfig, brokers: str, topic_prefix: str,
              client_config: dict[str, str], batch_size: int, timing: AlignTiming,
              store=None, stop_at_end: bool = False, observer=None,
              delivery_timeout_s: float = DELIVERY_TIMEOUT_S) -> Dataflow:
    flow = Dataflow("stockflow_live")
    source = KafkaChunkSource(brokers, input_topics(topic_prefix), client_config, batch_size,
                              stop_at_end=stop_at_end,
                              on_lag=observer.kafka_lag if observer is not None else None)
    raw = op.input("read", flow, source)
    if stop_at_end:
        timing = timing._replace(tick_s=0)  # a drain reads what is there and writes nothing back
    ticker = ClockTicker(brokers, client_config) if timing.tick_s else None
    outputs = engine(raw, engine_config, source.list_parts(), timing, durable=True, store=store,
                     ticker=ticker, observer=observer, blank_is_message=True)
    op.output("write", outputs, KafkaStreamSink(brokers, topic_prefix, client_config,
                                                delivery_timeout_s=delivery_timeout_s))
    return flow
