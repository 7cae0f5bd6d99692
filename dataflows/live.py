"""Live: Kafka input topics through the engine into Kafka output topics, with Redis beside.

    <prefix>master|stock|orders -> engine (see engine.py) -> <prefix><stream>
    clock ticks -> back into quiet input partitions (recorded, so replays see them too)
    heartbeat timer -> Redis (the reservation API trusts the read model while it beats)
"""

from __future__ import annotations

from datetime import timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import SimplePollingSource

from stockflow.connectors.clock_ticks import ClockTicker
from stockflow.connectors.kafka_admin import input_topics
from stockflow.connectors.kafka_sink import KafkaStreamSink
from stockflow.connectors.kafka_source import KafkaChunkSource
from stockflow.state.config import EngineConfig

from .engine import engine
from .logic import AlignTiming


class _Every(SimplePollingSource):
    def next_item(self):
        return True


def live_flow(engine_config: EngineConfig, brokers: str, topic_prefix: str,
              client_config: dict[str, str], batch_size: int, timing: AlignTiming,
              store=None, stop_at_end: bool = False, observer=None,
              delivery_timeout_s: float = 30.0) -> Dataflow:
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
    if store is not None and not stop_at_end:  # a drain ends; a heartbeat would not
        beats = op.input("beat", flow, _Every(timedelta(seconds=1)))
        op.inspect("heartbeat", beats, lambda _step, _item: store.beat())
    return flow
