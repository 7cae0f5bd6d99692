"""Future supply at one position: entries by `supply_id`, with totals kept incrementally.

`total` is all inbound; `due` is the inbound whose ETA is at or before `until` (the ATP
horizon last asked for), so ATP costs the same however many supplies a node announced; only
an ETA crossing the horizon, or a question behind it, walks the entries.

Channels with a supply policy count one kind within its own horizon: each (kind, horizon)
asked for gets a `KindWindow` kept the same way, so their ATP costs the same too.
"""

from __future__ import annotations

import msgspec

# Changes to the entries of any position in this process, counted: what is worked out from
# their ETAs alone (`wos_memo.py`) holds while the count stands. Not state: snapshots leave it
# out, and a restored engine keeps nothing worked out before.
_entry_changes = 0


def entry_changes() -> int:
    """How many times entries were announced, revised, withdrawn or received, so far."""
    return _entry_changes


# gc=False here and on the other state structs: they hold no references back, and there are
# millions of them; leaving them out of the cycle collector saves memory and collection time.
class Inbound(msgspec.Struct, array_like=True, gc=False):
    """Future supply announced under one `supply_id`."""

    qty: int
    eta_ms: int
    kind: str


class InboundSupply(msgspec.Struct, array_like=True, gc=False):
    entries: dict[str, Inbound] = {}
    total: int = 0
    due: int = 0  # sum of entries with eta <= until
    until: int = 0
    next_eta: int | None = None  # earliest eta after `until`, None if there is none
    # (kind, horizon) windows channel supply policies asked for; None until one does
    windows: list["KindWindow"] | None = None

    def due_by(self, until_ms: int) -> int:
        """Inbound due by `until_ms`."""
        if until_ms >= self.until:
            self.advance(until_ms)
            return self.due
        # a question behind the horizon already reached (another input's slower clock)
        return sum(i.qty for i in self.entries.values() if i.eta_ms <= until_ms)

    def next_after(self, ms: int) -> int | None:
        """The earliest ETA after `ms`, None if there is none."""
        if self.due == 0 and ms <= self.until:
            return self.next_eta  # nothing is due by `until`: the earliest beyond it is the one
        etas = [entry.eta_ms for entry in self.entries.values() if entry.eta_ms > ms]
        return min(etas) if etas else None

    def advance(self, until_ms: int) -> bool:
        """Move the horizon forward to `until_ms`; True if some inbound became due."""
        if until_ms <= self.until:
            return False
        self.until = until_ms
        if self.next_eta is None or self.next_eta > until_ms:
            return False
        self._recount()
        return True

    def set(self, supply_id: str, qty: int, eta_ms: int, kind: str) -> int:
        """Announce, revise (qty > 0) or withdraw (qty == 0) a supply; returns its old qty."""
        global _entry_changes
        _entry_changes += 1
        old = self.entries.pop(supply_id, None)
        if old is not None:
            self._count(old, -old.qty)
        if qty:
            entry = self.entries[supply_id] = Inbound(qty, eta_ms, kind)
            self._count(entry, qty)
        return 0 if old is None else old.qty

    def receive(self, supply_id: str, qty: int) -> None:
        """Units of a supply arrived: they leave inbound."""
        global _entry_changes
        entry = self.entries.get(supply_id)
        if entry is None:
            return
        _entry_changes += 1
        taken = min(qty, entry.qty)
        entry.qty -= taken
        self._count(entry, -taken)
        if entry.qty == 0:
            del self.entries[supply_id]
            if entry.eta_ms == self.next_eta:
                self._recount()

    def due_of_kind(self, kind: str, horizon_ms: int, until_ms: int) -> int:
        """Inbound of `kind` due by `until_ms`, kept in the window of (kind, horizon_ms)."""
        windows = self.windows
        if windows is None:
            windows = self.windows = []
        for window in windows:
            if window.horizon_ms == horizon_ms and window.kind == kind:
                if until_ms >= window.until and (window.next_eta is None
                                                 or window.next_eta > until_ms):
                    window.until = until_ms  # nothing crosses: the usual case, inline
                    return window.due
                return window.due_by(self.entries, until_ms)
        window = KindWindow(kind, horizon_ms, until_ms)
        window.recount(self.entries)
        windows.append(window)
        return window.due

    def advance_windows(self, clock_ms: int) -> bool:
        """Move every kind window's horizon to `clock_ms` + its own; True if some became due."""
        became = False
        for window in self.windows or ():
            became |= window.advance(self.entries, clock_ms + window.horizon_ms)
        return became

    def _count(self, entry: Inbound, delta: int) -> None:
        if self.windows:
            for window in self.windows:
                if window.kind == entry.kind:
                    window.count(entry, delta)
        self.total += delta
        if entry.eta_ms <= self.until:
            self.due += delta
        elif delta > 0:
            if self.next_eta is None or entry.eta_ms < self.next_eta:
                self.next_eta = entry.eta_ms
        elif entry.eta_ms == self.next_eta:
            self._recount()

    def _recount(self) -> None:
        due, later = 0, None
        for entry in self.entries.values():
            if entry.eta_ms <= self.until:
                due += entry.qty
            elif later is None or entry.eta_ms < later:
                later = entry.eta_ms
        self.due, self.next_eta = due, later


class KindWindow(msgspec.Struct, array_like=True, gc=False):
    """Inbound of one kind due by `until` (clock + `horizon_ms`), kept incrementally.

    `next_eta` is never later than the earliest ETA of the kind beyond `until` (a withdrawn
    supply may leave it early: the next advance past it recounts and sets it right)."""

    kind: str
    horizon_ms: int
    until: int
    due: int = 0
    next_eta: int | None = None

    def due_by(self, entries: dict[str, Inbound], until_ms: int) -> int:
        if until_ms >= self.until:
            self.advance(entries, until_ms)
            return self.due
        return sum(i.qty for i in entries.values() if i.kind == self.kind and i.eta_ms <= until_ms)

    def advance(self, entries: dict[str, Inbound], until_ms: int) -> bool:
        if until_ms <= self.until:
            return False
        self.until = until_ms
        if self.next_eta is None or self.next_eta > until_ms:
            return False
        self.recount(entries)
        return True

    def count(self, entry: Inbound, delta: int) -> None:
        if entry.eta_ms <= self.until:
            self.due += delta
        elif delta > 0 and (self.next_eta is None or entry.eta_ms < self.next_eta):
            self.next_eta = entry.eta_ms

    def recount(self, entries: dict[str, Inbound]) -> None:
        due, later, kind, until = 0, None, self.kind, self.until
        for entry in entries.values():
            if entry.kind != kind:
                continue
            if entry.eta_ms <= until:
                due += entry.qty
            elif later is None or entry.eta_ms < later:
                later = entry.eta_ms
        self.due, self.next_eta = due, later
