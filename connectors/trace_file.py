"""A JSON Lines trace (gzipped if it ends in .gz) read as decoded events, in chunks, without
Bytewax: for running the pure engine over a file (`stockflow inspect --events`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .codec import decode_lines
from .files import CHUNK_LINES, open_trace


def read_events(path: str | Path, chunk_lines: int = CHUNK_LINES) -> Iterator[list]:
    """Lists of events and `Malformed`s, in file order; blank lines are nothing."""
    name = Path(path).name
    with open_trace(path) as f:
        first, lines = 1, []
        for raw in f:
            lines.append(raw)
            if len(lines) == chunk_lines:
                yield decode_lines(lines, name, first)
                first, lines = first + len(lines), []
        if lines:
            yield decode_lines(lines, name, first)
