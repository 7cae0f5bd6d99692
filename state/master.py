"""Master data: nodes and channels (the latest upsert wins), and which nodes serve what."""

from __future__ import annotations

from .events import Channel, Node
from .supply_policy import SupplyView, supply_view


class Catalog:
    """Nodes and channels, with the eligible-node sets that sourcing asks for, cached."""

    __slots__ = ("nodes", "channels", "_members", "_shippers", "supply_policies", "_views",
                 "_regions", "version")

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.channels: dict[str, Channel] = {}
        self.supply_policies = False  # some channel counts inbound by its own policy
        self._views: dict[tuple[str, int], SupplyView | None] = {}
        self._members: dict[str, frozenset[str]] = {}
        self._shippers: dict[str, frozenset[str]] = {}
        self._regions: dict[str, frozenset[str]] = {}
        self.version = 0  # counts upserts: what was worked out from older master data is stale

    def upsert_node(self, node: Node) -> None:
        self.nodes[node.id] = node
        self.version += 1
        self._members.clear()
        self._shippers.clear()
        self._regions.clear()

    def upsert_channel(self, channel: Channel) -> None:
        self.channels[channel.id] = channel
        self.version += 1
        self.supply_policies = any(c.supply is not None for c in self.channels.values())
        self._views.clear()
        self._members.clear()
        self._shippers.clear()

    def channel_nodes(self, channel_id: str) -> frozenset[str]:
        """Ids of the active nodes a channel sells from (its 'virtual total warehouse')."""
        members = self._members.get(channel_id)
        if members is None:
            channel = self.channels.get(channel_id)
            if channel is None:
                members = frozenset()
            else:
                wanted = None if channel.all_nodes else set(channel.nodes)
                members = frozenset(
                    n.id for n in self.nodes.values()
                    if n.active and (wanted is None or n.id in wanted)
                )
            self._members[channel_id] = members
        return members

    def channel_ship_nodes(self, channel_id: str) -> frozenset[str]:
        """The channel's nodes a ship line can be sourced from."""
        shippers = self._shippers.get(channel_id)
        if shippers is None:
            shippers = self._shippers[channel_id] = frozenset(
                n for n in self.channel_nodes(channel_id) if self.nodes[n].can_ship
            )
        return shippers

    def supply_view(self, channel_id: str, horizon_ms: int) -> SupplyView | None:
        """What the channel counts of inbound supply (`supply_policy.py`), built once;
        `horizon_ms`: the engine's inbound horizon. None: the engine's view."""
        key = (channel_id, horizon_ms)
        try:
            return self._views[key]
        except KeyError:
            view = self._views[key] = supply_view(self.channels.get(channel_id), horizon_ms)
            return view

    def region_nodes(self, region: str) -> frozenset[str]:
        """Ids of the active nodes that stand in the region."""
        nodes = self._regions.get(region)
        if nodes is None:
            nodes = self._regions[region] = frozenset(
                n.id for n in self.nodes.values() if n.active and n.region == region)
        return nodes

    def can_fulfil(self, node_id: str, fulfillment: str, pickup_node: str | None) -> bool:
        """Whether a node has the capability a line needs: ship, or pickup at that store only."""
        node = self.nodes.get(node_id)
        if node is None:
            return False
        if fulfillment == "pickup":
            return node.can_pickup and node_id == pickup_node
        return node.can_ship

    def snapshot(self) -> tuple[list[Node], list[Channel]]:
        return list(self.nodes.values()), list(self.channels.values())

    @classmethod
    def restore(cls, nodes: list[Node], channels: list[Channel]) -> "Catalog":
        catalog = cls()
        for node in nodes:
            catalog.nodes[node.id] = node
        for channel in channels:
            catalog.upsert_channel(channel)
        return catalog
