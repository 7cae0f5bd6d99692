"""Per-channel figures of a replay: fill rate, and what WOS protection was for.

`wos_sold_away` is the alert the engine gives when a channel with `wos_weeks` ran out of a SKU
(a line rejected or backordered for lack of stock) after other channels had sold units that
were protected for it at the moment they sold them (state/wos.py). With protection on the
engine keeps those units back, so the count is 0; `--no-wos-protection` shows what it saves.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from stockflow.state.outputs import Alert


class ChannelFigures(msgspec.Struct, kw_only=True):
    lines: int = 0  # order lines of the channel
    allocated_lines: int = 0  # ...with units allocated at the end
    fill_rate: float = 0.0
    wos_weeks: float | None = None  # its protection target (master data)
    wos_run_outs: int = 0  # lines that ran out after units protected for it were sold away
    wos_sold_away: int = 0  # ...those units, summed


def channel_figures(line_channel: dict[tuple[str, str], str], allocated: set[tuple[str, str]],
                    wos_weeks: dict[str, float | None], alerts: list) -> dict[str, ChannelFigures]:
    """Per channel: its lines, those allocated, and its `wos_sold_away` alerts summed."""
    lines = Counter(line_channel.values())
    filled = Counter(line_channel[key] for key in allocated if key in line_channel)
    out = {}
    for channel in sorted(set(lines) | set(wos_weeks)):
        n = lines.get(channel, 0)
        out[channel] = ChannelFigures(
            lines=n, allocated_lines=filled.get(channel, 0),
            fill_rate=filled.get(channel, 0) / n if n else 0.0,
            wos_weeks=wos_weeks.get(channel))
    for alert in alerts:
        if type(alert) is Alert and alert.kind == "wos_sold_away" and alert.channel in out:
            figures = out[alert.channel]
            figures.wos_run_outs += 1
            figures.wos_sold_away += int(alert.detail.split(" ", 1)[0])  # "<units> units ..."
    return out
