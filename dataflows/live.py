"""Live: Kafka input topics through the engine into Kafka output topics, with Redis beside.

    <prefix>orders|stock|master -> engine (see engine.py) -> <prefix><stream>
    heartbeat timer -> Redis (the reservation API trusts the read model while it beats)
"""

from __future__ import annotations

from datetime import timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import SimplePollingSource

from stockflow.connectors.kafka_admin import input_topics
from stockflow.connectors.kafka_sink import KafkaStreamSink
from stockflow.connectors.kafka_source import KafkaChunkSource
from stockflow.state.config import EngineConfig

from .engine import engine


class _Every(SimplePollingSource):
    def next_item(self):
        return True


def live_flow(engine_config: EngineConfig, brokers: str, topic_prefix: str,
              client_config: dict[str, str], batch_size: int, clock_tick_s: float,
              store=None, stop_at_end: bool = False, observer=None) -> Dataflow:
    flow = Dataflow("stockflow_live")
    source = KafkaChunkSource(brokers, input_topics(topic_prefix), client_config, batch_size,
                              stop_at_end=stop_at_end,
                              on_lag=observer.kafka_lag if observer is not None else None)
    raw = op.input("read", flow, source)
    outputs = engine(raw, engine_config, durable=True, store=store,
                     clock_tick_s=clock_tick_s or None, observer=observer)
    op.output("write", outputs, KafkaStreamSink(brokers, topic_prefix, client_config))
    if store is not None and not stop_at_end:  # a drain ends; a heartbeat would not
        beats = op.input("beat", flow, _Every(timedelta(seconds=1)))
        op.inspect("heartbeat", beats, lambda _step, _item: store.beat())
    return flow
