"""The README says what the code does: the commands to get `stockflow`, the reservation
results the metric carries, the reasons live mode refuses to start for, the `Reservations`
constructor. Each check reads the names from the code, so a new one undocumented fails."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from stockflow.connectors.reservations import Reservations
from stockflow.ops.metrics import ReservationCollector

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _row(first_cell: str) -> str:
    [row] = [line for line in README.splitlines() if line.startswith(f"| {first_cell} |")]
    return row


def test_make_install_is_among_the_commands_and_says_where_stockflow_is():
    assert "`make install`" in README and ".venv/bin/stockflow" in README
    assert re.search(r"^install:", (ROOT / "Makefile").read_text(), re.MULTILINE)


def test_every_reservation_result_is_documented():
    row = _row("`stockflow_reservations_total{result}`")
    for result in ReservationCollector.RESULTS:
        assert f"`{result}`" in row, f"result {result!r} is not in the README's metrics table"


def test_every_reason_live_mode_refuses_for_is_documented():
    reasons = re.findall(r'_refusal\("([a-z_]+)"', (ROOT / "ops" / "live.py").read_text())
    assert {"topics_missing", "recovery_store", "redis_unreachable"} <= set(reasons)
    row = _row("`refused`")
    for reason in reasons:
        assert f"`{reason}`" in row, f"refusal {reason!r} is not in the README's log table"
    for gone in re.findall(r"`([a-z]+_[a-z_]+)`", row.split("`reason`")[1]):
        if gone not in ("brokers", "topics", "recovery", "error"):
            assert gone in reasons, f"the README names a refusal {gone!r} the code never gives"


def test_the_reservations_constructor_is_documented_as_it_is():
    params = inspect.signature(Reservations.__init__).parameters.values()
    shown = ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                      for p in params if p.name != "self").replace("'", '"')
    assert f"`Reservations({shown})`" in README
