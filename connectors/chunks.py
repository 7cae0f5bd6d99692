"""What sources hand the engine: chunks of raw messages from one input partition."""

from __future__ import annotations

from typing import NamedTuple


class RawChunk(NamedTuple):
    """Raw messages of one input partition, in order."""

    source: str  # the partition: `topic:partition`, or a file's name
    first: int  # offset (Kafka) or line number (file) of the first message
    values: list[bytes]
    end: bool = False  # the partition has nothing more (the end of a drain or of a file)
    # Each message's Kafka record timestamp (ms; -1: none), for the `ts_ahead` check; None:
    # the messages have none (a file without them).
    stamps: list[int] | None = None


class Decoded(NamedTuple):
    """A chunk decoded: events and `Malformed` messages, in the partition's order."""

    source: str
    events: list
    end: bool = False
