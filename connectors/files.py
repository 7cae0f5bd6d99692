"""JSON Lines files: a source that reads chunks of lines, a sink writing one file per stream."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import BinaryIO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from stockflow.state.outputs import STREAMS

from .chunks import RawChunk

# Lines read per chunk: enough to spread Bytewax's cost per item thin, few enough that a
# chunk's events reach the merge while the next is read.
CHUNK_LINES = 2048


def open_trace(path: str | Path) -> BinaryIO:
    """A JSON Lines trace for reading, gunzipped on the way when its name ends in .gz."""
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


class _LinesPartition(StatefulSourcePartition[RawChunk, int]):
    def __init__(self, name: str, f: BinaryIO, chunk_lines: int, resume: int | None,
                 on_read=None, stamps: BinaryIO | None = None):
        self._name = name
        self._stamps = stamps  # each line's record timestamp, one a line (record_times)
        self._on_read = on_read
        self._f = f
        self._chunk = chunk_lines
        self._line = 1
        self._ended = False
        if resume is not None:  # (byte offset, line number[, stamps offset]) of the next line
            offset, self._line = resume[0], resume[1]
            f.seek(offset)
            if stamps is not None:
                stamps.seek(resume[2])

    def next_batch(self) -> list[RawChunk]:
        if self._ended:
            raise StopIteration
        lines = []
        readline = self._f.readline
        for _ in range(self._chunk):
            raw = readline()
            if not raw:
                self._ended = True
                break
            lines.append(raw)
        first, self._line = self._line, self._line + len(lines)
        if self._on_read is not None and lines:
            self._on_read(sum(map(len, lines)))
        stamps = None
        if self._stamps is not None:
            stamps = [int(self._stamps.readline() or -1) for _ in lines]
        return [RawChunk(self._name, first, lines, self._ended, stamps)]

    def snapshot(self):
        if self._f is sys.stdin.buffer:
            return None
        if self._stamps is not None:
            return self._f.tell(), self._line, self._stamps.tell()
        return self._f.tell(), self._line

    def close(self) -> None:
        if self._f is not sys.stdin.buffer:
            self._f.close()
        if self._stamps is not None:
            self._stamps.close()


class JsonLinesSource(FixedPartitionedSource[RawChunk, int]):
    """Reads a JSON Lines file (gzipped if it ends in .gz; stdin as `-`) in chunks of lines.

    One partition per file: its lines reach the engine in file order.
    """

    def __init__(self, path: str, chunk_lines: int = 2048, on_read=None,
                 record_times: str | None = None):
        self.path = path
        self.record_times = record_times  # a file: each line's Kafka record timestamp (ms)
        self.chunk_lines = chunk_lines
        self.on_read = on_read  # called with the bytes of every chunk read (progress)

    def list_parts(self) -> list[str]:
        return [self.path]

    def build_part(self, step_id: str, for_part: str, resume_state):
        if for_part == "-":
            return _LinesPartition("stdin", sys.stdin.buffer, self.chunk_lines, None, self.on_read)
        f = open_trace(for_part)
        stamps = open(self.record_times, "rb") if self.record_times is not None else None
        return _LinesPartition(Path(for_part).name, f, self.chunk_lines, resume_state,
                               self.on_read, stamps)


class _StreamFilePartition(StatefulSinkPartition[list[bytes], int]):
    def __init__(self, path: Path, resume: int | None):
        self._f = open(path, "r+b" if resume is not None and path.exists() else "wb")
        if resume is not None:
            self._f.seek(resume)
            self._f.truncate()

    def write_batch(self, values: list[list[bytes]]) -> None:
        for lines in values:
            if lines:
                self._f.write(b"\n".join(lines))
                self._f.write(b"\n")

    def snapshot(self) -> int:
        self._f.flush()
        return self._f.tell()

    def close(self) -> None:
        self._f.close()


class StreamFilesSink(FixedPartitionedSink[list[bytes], int]):
    """Writes `(stream, [json bytes, ...])` items to `<directory>/<stream>.jsonl`."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._order = sorted(STREAMS)

    def list_parts(self) -> list[str]:
        return list(self._order)

    def part_fn(self, item_key: str) -> int:
        return self._order.index(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state):
        self.directory.mkdir(parents=True, exist_ok=True)
        return _StreamFilePartition(self.directory / f"{for_part}.jsonl", resume_state)
