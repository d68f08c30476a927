"""The routing tables in memory: groups, routes and carriers loaded in bulk, read without SQL.

`RoutingSnapshot.load()` reads route_groups, routes, route_carriers and carriers in four
queries; `legs_for` then answers as `lcr.legs_for` does (longest route prefix in the group,
enabled carriers, LCR or priority order) with dictionary probes only. A snapshot is kept while
the routing version (app/routing/cache_versions.py, bumped by triggers on the same tables and the
buy sheets) is unchanged, so an edit committed anywhere applies to the next call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select

from app.extensions import db

from .lcr import Leg, order_legs
from .models import Carrier, CustomerRoute, Route, RouteCarrier, RouteGroup

@dataclass(frozen=True, slots=True)
class CarrierRow:
    id: int
    endpoint: str
    strip_digits: int
    add_prefix: str
    buy_rate_sheet_id: int | None

    def dialled(self, destination: str) -> str:
        return self.add_prefix + destination[self.strip_digits:]


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: int
    strategy: str


class RoutingSnapshot:
    def __init__(self, groups: dict[int, GroupRow], default: GroupRow | None,
                 routes: dict[int, dict[str, int]], carriers_of: dict[int, list[tuple[int, CarrierRow]]]):
        self.groups = groups
        self.default = default
        self.routes = routes                    # group id -> {prefix: route id}
        self.carriers_of = carriers_of          # route id -> [(position, enabled carrier)]
        self._lengths = {g: sorted({len(p) for p in r}, reverse=True) for g, r in routes.items()}

    @property
    def configured(self) -> bool:
        """lcr.routing_configured(): any route group at all."""
        return bool(self.groups)

    @classmethod
    def load(cls) -> "RoutingSnapshot":
        """Call inside unscoped(): the platform's routing, every tenant."""
        groups = {g.id: GroupRow(g.id, g.strategy) for g in db.session.execute(
            select(RouteGroup.id, RouteGroup.strategy).order_by(RouteGroup.id))}
        default_id = db.session.execute(select(RouteGroup.id).where(RouteGroup.is_default.is_(True))
                                        .order_by(RouteGroup.id).limit(1)).scalar_one_or_none()
        routes: dict[int, dict[str, int]] = {}
        for route_id, group_id, prefix in db.session.execute(
                select(Route.id, Route.group_id, Route.prefix).order_by(Route.id)):
            routes.setdefault(group_id, {}).setdefault(prefix, route_id)
        carriers = {c.id: CarrierRow(c.id, c.endpoint, c.strip_digits, c.add_prefix, c.buy_rate_sheet_id)
                    for c in db.session.execute(select(Carrier).where(Carrier.enabled.is_(True))).scalars()}
        carriers_of: dict[int, list[tuple[int, CarrierRow]]] = {}
        for route_id, carrier_id, position in db.session.execute(
                select(RouteCarrier.route_id, RouteCarrier.carrier_id, RouteCarrier.position)
                .order_by(RouteCarrier.id)):
            if carrier_id in carriers:
                carriers_of.setdefault(route_id, []).append((position, carriers[carrier_id]))
        return cls(groups, groups.get(default_id) if default_id is not None else None, routes, carriers_of)

    def buy_sheets(self) -> set[int]:
        return {c.buy_rate_sheet_id for rows in self.carriers_of.values() for _, c in rows if c.buy_rate_sheet_id}

    def group_for(self, customer_routes: dict[int | None, int], extension_id: int | None) -> GroupRow | None:
        """lcr.group_for on cached rows: the extension's customer route, else the account's,
        else the platform default. `customer_routes`: {extension id or None: group id}."""
        group_id = customer_routes.get(extension_id) if extension_id is not None else None
        group_id = group_id or customer_routes.get(None)
        if group_id is not None:
            return self.groups.get(group_id)
        return self.default

    def legs_for(self, group: GroupRow, destination: str,
                 buy_rate: Callable[[int, str], object]) -> list[Leg]:
        """lcr.legs_for on cached rows: [] when no route or carrier fits."""
        routes = self.routes.get(group.id)
        if not routes:
            return []
        route_id = None
        for n in self._lengths[group.id]:
            if n <= len(destination):
                route_id = routes.get(destination[:n])
                if route_id is not None:
                    break
        if route_id is None:
            return []
        candidates = []
        for position, carrier in self.carriers_of.get(route_id, ()):
            rate = buy_rate(carrier.buy_rate_sheet_id, destination) if carrier.buy_rate_sheet_id else None
            candidates.append((position, Leg(carrier.id, carrier.endpoint, carrier.dialled(destination), rate)))
        return order_legs(group.strategy, candidates)


def customer_routes_of(account_id: int) -> dict[int | None, int]:
    return {ext: group for ext, group in db.session.execute(
        select(CustomerRoute.extension_id, CustomerRoute.group_id).where(CustomerRoute.account_id == account_id)
        .order_by(CustomerRoute.id))}
