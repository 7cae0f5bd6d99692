"""What "oversold" means, once: the metric, the replay summary, `whatif` and the README count
it with these.

An oversold line is a paid order line the engine rejected because the units it was sold
against were not there: `no_stock` (no eligible node had them), `split_not_allowed` (no one
node had them all, the nodes together did, its channel does not split lines) or `shortage`
(its units were taken back when supply fell, and found nowhere else). It is counted at each
such rejection, whatever follows: a customer who cancels after the refusal was still refused.
A paid line rejected for configuration (`unknown_channel`, `no_eligible_node`) is not oversold:
the metric counts it under its reason, the alert rules apart.
"""

from __future__ import annotations

from stockflow.state.outputs import OrderStatus

OVERSELL_REASONS = frozenset({"no_stock", "split_not_allowed", "shortage"})
CONFIG_REASONS = frozenset({"unknown_channel", "no_eligible_node"})


def oversold(status: OrderStatus) -> bool:
    """Whether this `order.status` oversells its line."""
    return status.status == "rejected" and status.paid and status.reason in OVERSELL_REASONS
