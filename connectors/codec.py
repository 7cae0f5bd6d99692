"""Bytes <-> contract types. Decoders and encoders are built once, at import.

A message that does not decode, or breaks a rule the schema cannot express, becomes a
`Malformed` carrying the reason; nothing raises.
"""

from __future__ import annotations

import msgspec

from stockflow.state.events import InputEvent, Malformed, check_rules, epoch_ms
from stockflow.state.outputs import STREAM_OF, OutputEvent

_DECODE_EVENT = msgspec.json.Decoder(InputEvent).decode
_ENCODE = msgspec.json.Encoder().encode


class _MaybeId(msgspec.Struct):
    event_id: str | None = None


_DECODE_ID = msgspec.json.Decoder(_MaybeId).decode


def decode_message(raw: bytes, source: str):
    """One message -> its event, or a `Malformed` with the reason."""
    try:
        event = _DECODE_EVENT(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return _malformed(raw, str(exc), source)
    broken = check_rules(event)
    return event if broken is None else _malformed(raw, broken, source)


def decode_lines(lines: list[bytes], source: str, first_line: int,
                 blank_is_message: bool = False, stamps: list[int] | None = None,
                 max_ahead_ms: int | None = None) -> list:
    """Raw messages -> events and `Malformed`s, in order; item i is from `source:first_line+i`.

    `blank_is_message`: whether an empty or whitespace-only item is a message (then a
    dead letter) or nothing. A JSON Lines file's blank lines are nothing (the default); a
    Kafka value is always a message, so decoding Kafka values passes True.
    `stamps`: each message's Kafka record timestamp (ms, -1 for none): an event stamped more
    than `max_ahead_ms` after its record was written is refused (`ts_ahead`). The timestamp
    is recorded with the message, so a replay of the recorded topics that is given them
    decides alike.
    """
    out = []
    append = out.append
    decode = _DECODE_EVENT
    for i, raw in enumerate(lines):
        try:
            event = decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            if blank_is_message or raw.strip():
                append(_malformed(raw, str(exc), f"{source}:{first_line + i}"))
            continue
        broken = check_rules(event)
        if broken is None and stamps is not None and max_ahead_ms is not None:
            broken = _ahead(event, stamps[i], max_ahead_ms)
            if broken is not None:
                append(_malformed(raw, broken, f"{source}:{first_line + i}", "ts_ahead"))
                continue
        append(event if broken is None else _malformed(raw, broken, f"{source}:{first_line + i}"))
    return out


def _ahead(event, stamp_ms: int, max_ahead_ms: int) -> str | None:
    """Why an event's time lies too far after its record's, else None."""
    if stamp_ms < 0:
        return None
    ahead = epoch_ms(event.ts) - stamp_ms
    if ahead <= max_ahead_ms:
        return None
    return (f"stamped {ahead / 1000:.0f} s after its Kafka record was written (at most "
            f"{max_ahead_ms / 1000:.0f} s, `[run] max_ahead_s`)")


def _malformed(raw: bytes, error: str, source: str, reason: str | None = None) -> Malformed:
    try:
        event_id = _DECODE_ID(raw).event_id
    except (msgspec.ValidationError, msgspec.DecodeError):
        event_id = None
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    return Malformed(text, error, source, event_id or None, reason)


def encode_by_stream(outputs: list[OutputEvent]) -> dict[str, list[bytes]]:
    """Outputs -> JSON bytes grouped by the stream each belongs to."""
    streams: dict[str, list[bytes]] = {}
    for output in outputs:
        stream = STREAM_OF[type(output)]
        encoded = _ENCODE(output)
        lst = streams.get(stream)
        if lst is None:
            streams[stream] = [encoded]
        else:
            lst.append(encoded)
    return streams

