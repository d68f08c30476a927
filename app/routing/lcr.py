"""Which carriers a call tries, in order: the customer's route group, its longest matching
route, then least cost (the carriers' buy rates) or the listed priority."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from sqlalchemy import func, select

from app.extensions import db

from .models import Carrier, CustomerRoute, Route, RouteCarrier, RouteGroup

NO_ROUTE = "no_route"


@dataclass(frozen=True, slots=True)
class Leg:
    """One Dial attempt: `PJSIP/<number>@<endpoint>`."""
    carrier_id: int
    endpoint: str
    number: str
    buy_rate: Decimal | None        # per minute on the carrier's buy sheet; None: no sheet/rate

    @property
    def dial(self) -> str:
        return f"PJSIP/{self.number}@{self.endpoint}"


def order_legs(strategy: str, candidates: list[tuple[int, Leg]]) -> list[Leg]:
    """candidates: (position, leg). `lcr` drops carriers with no buy rate for the destination
    (their cost is unknown) and sorts by rate, ties by position; `priority` keeps positions."""
    if strategy == "lcr":
        priced = [(leg.buy_rate, pos, leg) for pos, leg in candidates if leg.buy_rate is not None]
        return [leg for _, _, leg in sorted(priced, key=lambda t: (t[0], t[1]))]
    return [leg for _, leg in sorted(candidates, key=lambda t: t[0])]


def group_for(account_id: int, extension_id: int | None) -> RouteGroup | None:
    """The extension's customer route, else the account's, else the platform default."""
    rows = db.session.execute(
        select(CustomerRoute.extension_id, CustomerRoute.group_id)
        .where(CustomerRoute.account_id == account_id,
               (CustomerRoute.extension_id == extension_id) | CustomerRoute.extension_id.is_(None))).all()
    chosen = {ext: group for ext, group in rows}
    group_id = chosen.get(extension_id) if extension_id is not None else None
    group_id = group_id or chosen.get(None)
    if group_id is not None:
        return db.session.get(RouteGroup, group_id)
    return db.session.execute(select(RouteGroup).where(RouteGroup.is_default.is_(True))
                              .order_by(RouteGroup.id).limit(1)).scalar_one_or_none()


def routing_configured() -> bool:
    return db.session.execute(select(RouteGroup.id).limit(1)).first() is not None


def matching_route(group_id: int, destination: str) -> int | None:
    """The id of the group's route with the longest prefix of `destination` ('' matches all)."""
    prefixes = [destination[:n] for n in range(len(destination) + 1)]
    return db.session.execute(
        select(Route.id).where(Route.group_id == group_id, Route.prefix.in_(prefixes))
        .order_by(func.length(Route.prefix).desc()).limit(1)).scalar_one_or_none()


def legs_for(group: RouteGroup, destination: str,
             buy_rate: Callable[[int, str], Decimal | None]) -> list[Leg]:
    """The Dial attempts for `destination` in `group`; [] when no route or carrier fits.
    `buy_rate(sheet_id, number)` prices a number on a buy sheet (the rating prefix index)."""
    route_id = matching_route(group.id, destination)
    if route_id is None:
        return []
    rows = db.session.execute(
        select(RouteCarrier.position, Carrier).join(Carrier, Carrier.id == RouteCarrier.carrier_id)
        .where(RouteCarrier.route_id == route_id, Carrier.enabled.is_(True))).all()
    candidates = []
    for position, carrier in rows:
        number = carrier.dialled(destination)
        rate = buy_rate(carrier.buy_rate_sheet_id, destination) if carrier.buy_rate_sheet_id else None
        candidates.append((position, Leg(carrier.id, carrier.endpoint, number, rate)))
    return order_legs(group.strategy, candidates)
