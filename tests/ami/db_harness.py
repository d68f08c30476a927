"""The AMI watcher with the database-backed policy: fake Asterisk over TCP, real panoramisk,
PostgreSQL (tests/conftest.py's per-process schema) and Redis (the app's test database,
keys under a per-test prefix).

Time scales are short: a rate of 60.00 a minute bills 1.00 a second (1/1 blocks), so 2.00 of
credit lasts 2 s of one call, or 1 s each of two.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from decimal import Decimal

import redis.asyncio as aioredis
from sqlalchemy import func, select

from app.accounts.models import Account
from app.calls.models import Call
from app.extensions import db
from app.ledger import LedgerEntry
from tests.ami.fake_server import FakeAsterisk
from tests.ami.harness import FAST, World, eventually
from tenants.scope import unscoped
from workers.ami.db_policy import DatabasePolicy
from workers.ami.watcher import AsteriskServer, Watcher

ONE_A_SECOND = Decimal("60.00")      # per minute
# Admissions and deadlines go through the database: give them room on a loaded box.
DB_FAST = replace(FAST, admit_timeout=5.0, registration_flush=0.05)


def make_sheet(tenant, rates, name=None, currency="USD"):
    """A rate sheet with rows (prefix, country, per minute[, first block, increment])."""
    from app.rating.index import clear_index_cache
    from app.rating.models import Rate, RateSheet

    clear_index_cache()   # sheet ids restart in every test: a cached index would be another test's
    with unscoped():
        sheet = RateSheet(tenant_id=tenant.id, name=name or f"Sheet {uuid.uuid4().hex[:6]}", currency=currency)
        db.session.add(sheet)
        db.session.flush()
        for row in rates:
            prefix, country, per_minute, *blocks = row
            first_block, increment = (blocks + [1, 1])[:2] if blocks else (1, 1)
            db.session.add(Rate(tenant_id=tenant.id, rate_sheet_id=sheet.id, prefix=prefix, country=country,
                                description=f"{country} {prefix}", rate_per_minute=Decimal(per_minute),
                                first_block=first_block, increment=increment))
        db.session.commit()
        return sheet


def give_plan(account, sheet=None, countries=(("GB", 0),), users=1):
    from app.billing.plans import create_plan
    from provisioning.extensions import add_extensions

    with unscoped():
        acct = db.session.execute(select(Account).where(Account.id == account.id)).scalar_one()
        plan = create_plan(acct, name=f"Plan {uuid.uuid4().hex[:8]}", users=users, cost_per_user=Decimal("0"),
                           rate_sheet_id=sheet.id if sheet else None, countries=list(countries))
        exts = add_extensions(acct, users)
        db.session.commit()
        return plan, [(e.number, e.sip_username) for e in exts]


def calling_account(make_tenant, make_account, *, credit="2.00", countries=(("GB", 0),),
                    rates=(("44", "GB", ONE_A_SECOND),), users=2, places=None, **terms):
    """A tenant (at `places` call charge precision, when given), an account with a plan on a
    real rate sheet, and its extensions."""
    tenant = make_tenant() if places is None else make_tenant(call_charge_places=places)
    account = make_account(tenant, credit=credit, **terms)
    sheet = make_sheet(tenant, rates)
    _, extensions = give_plan(account, sheet, countries, users)
    return account, extensions


def set_account(account_id, **values):
    with unscoped():
        acct = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
        for k, v in values.items():
            setattr(acct, k, v)
        db.session.commit()


def fresh_account(account_id) -> Account:
    db.session.rollback()
    with unscoped():
        return db.session.execute(select(Account).where(Account.id == account_id)
                                  .execution_options(populate_existing=True)).scalar_one()


def calls_of(account_id) -> list[Call]:
    db.session.rollback()
    with unscoped():
        return list(db.session.execute(select(Call).where(Call.account_id == account_id)
                                       .order_by(Call.id).execution_options(populate_existing=True)).scalars())


def ledger_sum(account_id) -> Decimal:
    db.session.rollback()
    with unscoped():
        return db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                                 .where(LedgerEntry.account_id == account_id))


def ledger_entries(account_id, kind=None) -> list[LedgerEntry]:
    db.session.rollback()
    with unscoped():
        q = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
        if kind:
            q = q.where(LedgerEntry.kind == kind)
        return list(db.session.execute(q.order_by(LedgerEntry.id)).scalars())


async def eventually_db(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    """eventually() for predicates that read the database (polled less often)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.05)


async def admitted(w, account_number: str, n: int, timeout: float = 5.0) -> None:
    """Wait until n calls of the account are admitted (admissions go through the database)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await w.counts.account(account_number) != n:
        if loop.time() > deadline:
            raise AssertionError(f"{n} admitted calls of {account_number} not reached within {timeout}s")
        await asyncio.sleep(0.02)


def run_db_world(app, scenario, *, settings=DB_FAST, servers: int = 1, timeout: float = 25.0,
                 terms_ttl: float = 60.0, prepare=None):
    """Run `scenario(world)` against fresh fake Asterisks, a Watcher and a DatabasePolicy.

    The world's `prefix` keys the in-use counts (also set as the app's AMI_COUNTS_PREFIX, so
    portal pages read them); balance notices use the app's real channel (ledger.post).
    `prepare(amis)` runs before the watcher starts (phones already registered, say)."""
    async def main():
        prefix = f"ami-dbtest:{uuid.uuid4().hex[:10]}"
        client = aioredis.from_url(app.config["REDIS_URL"])
        amis = [await FakeAsterisk().start() for _ in range(servers)]
        if prepare is not None:
            prepare(amis)      # what the switches hold before the watcher starts
        old_prefix = app.config.get("AMI_COUNTS_PREFIX")
        tuned = replace(settings, counts_prefix=f"{prefix}:inuse")
        app.config["AMI_COUNTS_PREFIX"] = tuned.counts_prefix
        policy = DatabasePolicy(app, terms_ttl=terms_ttl)
        try:
            switches = [AsteriskServer(f"pbx{n + 1}", "127.0.0.1", ami.port, "ringledger", "s3cret")
                        for n, ami in enumerate(amis)]
            watcher = Watcher(switches, policy, client, tuned)
            world = World(amis, watcher, policy, watcher.counts, client, prefix)
            await watcher.start()
            try:
                await eventually(lambda: all(link.reconciliations >= 1 for link in watcher.links.values()),
                                 what="first reconciliation")
                await asyncio.wait_for(watcher.subscribed.wait(), 2)
                await scenario(world)
            finally:
                await watcher.stop()
        finally:
            app.config["AMI_COUNTS_PREFIX"] = old_prefix
            policy.close()
            for ami in amis:
                await ami.stop()
            keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
    asyncio.run(asyncio.wait_for(main(), timeout))
