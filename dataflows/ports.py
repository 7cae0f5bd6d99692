"""What the flows ask of the edges they are given: a read model, a metrics observer, a clock
ticker. Live mode plugs in Redis (`connectors/redis_store.py`), Prometheus (`ops/metrics.py`)
and Kafka (`connectors/clock_ticks.py`); replay plugs in none of them. Tests may plug in
anything with these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from stockflow.state.work import Intake
    from stockflow.state.events import CheckoutTaken
    from stockflow.state.ledger import Ledger
    from stockflow.state.read_model import SkuView
    from stockflow.state.work import Work


class BucketWork(NamedTuple):
    """What the sequencer hands one ledger bucket per batch."""

    read_at: float  # wall time the batch was taken from the merge (for latency)
    items: list[Work]
    # The checkout intakes of its SKUs, taken as they were fenced (live mode): each applies
    # at its position among the items (`state.work.with_intakes`).
    intakes: list[CheckoutTaken] | None = None
    # Where the fence took live holds in (a position; None: nowhere, a rerun's catch-up):
    # a bucket that fences the batch again takes them in there again.
    fresh_at: int | None = None


class ViewsToWrite(NamedTuple):
    """What one ledger bucket hands the read model's writer after a batch."""

    bucket: int
    whole_since: int | None  # the outage count these views are whole since; None: changes only
    views: list[SkuView]


class ReadModel(Protocol):
    """The read model checkouts sell against (Redis in live mode)."""

    outages: int  # failed round trips and losses so far: after either, rewrite it whole
    fence_ms: int  # a fence lapses this long after it is taken

    redo_until: int  # up to this position a restarted engine takes in what the log says

    def begin(self, intakes: dict[str, Intake], reached: int | None = None
              ) -> dict[str, list[CheckoutTaken]] | None:
        """Fence the SKUs and take in their checkout holds as `intakes` says (None:
        unreachable)."""

    def due(self) -> list[str]:
        """SKUs whose checkout holds changed and are due to be taken in."""

    def woken(self, after: int) -> list[tuple[int, str]]:
        """Where a run before this one took in holds of SKUs with no other traffic."""

    def write(self, sku_views: list[SkuView]) -> bool:
        """Write the views and lift the fence; False if it did not take them."""

    def whole(self, bucket: int, outages: int) -> None:
        """`bucket` has written its whole read model since outage number `outages`."""

    def is_whole(self, bucket: int) -> bool:
        """`bucket` has written its whole read model since the last outage."""

    def beat(self, at_most_every_s: float = 0.0) -> None:
        """Say the engine is alive, at most this often."""


class Observer(Protocol):
    """Told what each step did (metrics in live mode)."""

    def routed(self, items: list, dead: list, duplicates_before: int,
               duplicates_after: int) -> None: ...

    def late(self, new_by_partition: dict[str, int]) -> None: ...

    def applied(self, ledger: Ledger, outputs: list, by_stream: dict[str, list],
                read_at: float | None, oldest_ts_s: float | None,
                shortage_before: int) -> None: ...

    def state(self, ledger: Ledger, seconds: float) -> None: ...

    def kafka_lag(self, topic: str, partition: int, lag: int) -> None: ...


class Ticker(Protocol):
    """Writes `clock.tick` events into input partitions (live mode)."""

    def tick(self, partitions: list[str], now_ms: int) -> None: ...
