"""The bare pipe benchmarks compare stockflow with: the same Kafka input, decoded and encoded
again, one output message per valid input event, no logic in between.

    <prefix>orders|stock|master -> decode -> encode -> <prefix>passthrough
"""

from __future__ import annotations

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Dataflow

from stockflow.connectors.codec import decode_lines
from stockflow.connectors.kafka_admin import input_topics
from stockflow.connectors.kafka_sink import KafkaStreamSink
from stockflow.connectors.kafka_source import KafkaChunkSource
from stockflow.state.events import Malformed

STREAM = "passthrough"
_ENCODE = msgspec.json.Encoder().encode


def _relay(chunk) -> tuple[str, list[bytes]]:
    events = decode_lines(chunk.values, chunk.source, chunk.first, blank_is_message=True)
    return STREAM, [_ENCODE(e) for e in events if type(e) is not Malformed]


def passthrough_flow(brokers: str, topic_prefix: str, batch_size: int = 500) -> Dataflow:
    flow = Dataflow("stockflow_passthrough")
    raw = op.input("read", flow, KafkaChunkSource(brokers, input_topics(topic_prefix),
                                                  batch_size=batch_size, stop_at_end=True))
    relayed = op.map("relay", raw, _relay)
    op.output("write", relayed, KafkaStreamSink(brokers, topic_prefix))
    return flow
