"""Rating CDRs into the ledger (app/rating/cdr.py) and the periodic rating job (workers/rating.py)."""
from datetime import date, datetime
from decimal import Decimal

from workers.runner import SimpleWorker
from sqlalchemy import select

from app import jobs, ledger
from app.billing.models import BundleUsage
from app.extensions import db
from app.rating.cdr import rate_calls
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import (add_call, fresh_index_cache, balance, call, call_entries, give_plan, ledger_count,
                                              make_sheet)
from workers.rating import enqueue_rating, rate_pending_calls, rating_job_id

assert fresh_index_cache  # autouse fixture
UK = "442071234567"
FR = "33142345678"
# 0.10/min, 0.05 connect fee, 30/6 (docs/rating.md's example tariff)
UK_ROW = ("44", "GB", "0.10", "0.05", 30, 6)


def rated(tenant_id, ids):
    with tenant_scope(tenant_id, descendants=False):
        summary = rate_calls(ids)
        db.session.commit()
    return summary


def no_mismatch():
    with unscoped():
        return ledger.balance_mismatches() == []


def test_an_answered_call_is_rated_by_the_longest_prefix_and_debited_once(app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    sheet = make_sheet(tenant, [UK_ROW, ("447", "GB", "0.30")])
    give_plan(account, sheet, [("GB", 0)])
    landline, mobile = add_call(account, UK, 47), add_call(account, "+447911123456", 10)

    summary = rated(tenant.id, [landline, mobile])

    assert (summary.rated, summary.charged, summary.errors) == (2, 2, 0)
    c = call(landline)
    assert (c.cost, c.charged_seconds, c.bundle_seconds, c.country, c.rating_error) == (
        Decimal("0.13"), 48, 0, "GB", "")
    assert c.rated_at is not None and c.rate_id is not None
    assert call(mobile).cost == Decimal("0.05")            # 447 wins over 44: 10 s x 0.30/60
    assert call_entries(account.id) == [(f"call:{landline}", Decimal("-0.13")), (f"call:{mobile}", Decimal("-0.05"))]
    assert balance(account.id) == Decimal("9.82")
    assert no_mismatch()


def test_unanswered_calls_cost_nothing_and_write_no_ledger_entry(app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]))
    busy = add_call(account, UK, 0, disposition="BUSY")
    rated(tenant.id, [busy])
    c = call(busy)
    assert (c.cost, c.charged_seconds, c.rating_error) == (Decimal("0"), 0, "") and c.rated_at is not None
    assert call_entries(account.id) == [] and balance(account.id) == Decimal("10")


def test_bundle_seconds_are_used_first_and_a_call_crossing_the_boundary_pays_increments_only(
        app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]), [("GB", 1)])          # 60 free seconds a month
    first = add_call(account, UK, 40, datetime(2025, 5, 3, 9, 0))
    crossing = add_call(account, UK, 100, datetime(2025, 5, 3, 10, 0))
    after = add_call(account, UK, 10, datetime(2025, 5, 3, 11, 0))
    next_month = add_call(account, UK, 30, datetime(2025, 6, 1, 0, 0, 5))

    rated(tenant.id, [after, crossing, first, next_month])              # order of ids does not matter

    assert (call(first).bundle_seconds, call(first).charged_seconds, call(first).cost) == (40, 0, Decimal("0"))
    # 20 s left in the bundle; the other 80 s are charged in 6 s increments: 84 s x 0.10/60 = 0.14
    assert (call(crossing).bundle_seconds, call(crossing).charged_seconds, call(crossing).cost) == (
        20, 84, Decimal("0.14"))
    # bundle empty: the full formula, 0.05 + 30 s x 0.10/60
    assert (call(after).bundle_seconds, call(after).cost) == (0, Decimal("0.10"))
    assert (call(next_month).bundle_seconds, call(next_month).cost) == (30, Decimal("0"))   # a new period
    with unscoped():
        usage = dict(db.session.execute(select(BundleUsage.period_start, BundleUsage.seconds_used)
                                        .where(BundleUsage.account_id == account.id)).all())
    assert usage == {date(2025, 5, 1): 60, date(2025, 6, 1): 30}
    assert [k for k, _ in call_entries(account.id)] == [f"call:{crossing}", f"call:{after}"]
    assert no_mismatch()


def test_bundle_usage_left_by_earlier_batches_is_respected(app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]), [("GB", 1)])
    rated(tenant.id, [add_call(account, UK, 50)])
    second = add_call(account, UK, 16)
    rated(tenant.id, [second])
    assert (call(second).bundle_seconds, call(second).charged_seconds, call(second).cost) == (
        10, 6, Decimal("0.01"))


def test_a_call_to_a_country_the_plan_has_not_opened_gets_a_rating_error_and_no_charge(
        app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW, ("33", "FR", "0.05")]), [("GB", 0)])
    closed, unrouted = add_call(account, FR, 60), add_call(account, "999123456", 60)

    summary = rated(tenant.id, [closed, unrouted])

    assert summary.errors == 2 and summary.charged == 0
    assert "FR" in call(closed).rating_error and "not opened" in call(closed).rating_error
    assert call(closed).cost == Decimal("0") and call(closed).rated_at is not None
    assert call(unrouted).rating_error == "no rate for 999123456"
    assert call_entries(account.id) == [] and balance(account.id) == Decimal("10")


def test_accounts_without_a_plan_or_sheet_or_with_another_currency_get_a_rating_error(
        app, make_tenant, make_account):
    tenant = make_tenant()
    no_plan = make_account(tenant, credit="10")
    no_sheet = make_account(tenant, credit="10")
    give_plan(no_sheet, None)
    euro = make_account(tenant, credit="10", currency="EUR")
    give_plan(euro, make_sheet(tenant, [UK_ROW]))
    ids = [add_call(no_plan, UK, 30), add_call(no_sheet, UK, 30), add_call(euro, UK, 30)]
    rated(tenant.id, ids)
    errors = [call(i).rating_error for i in ids]
    assert errors[0] == "the account has no service plan"
    assert errors[1] == "the account's plan has no rate sheet"
    assert "USD" in errors[2] and "EUR" in errors[2]
    assert ledger_count() == 0


def test_a_call_to_an_extension_of_the_same_reseller_is_internal_and_free(app, make_tenant, make_account):
    from provisioning.models import Extension

    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]))
    with unscoped():
        db.session.add(Extension(tenant_id=tenant.id, account_id=account.id, number="1001",
                                 sip_username="t1_1001", sip_secret="x"))
        db.session.commit()
    internal = add_call(account, "1001", 120)
    rated(tenant.id, [internal])
    assert (call(internal).cost, call(internal).rating_error) == (Decimal("0"), "")
    assert ledger_count() == 0


def test_the_short_call_charge_of_the_sheet_is_added(app, make_tenant, make_account):
    tenant = make_tenant(call_charge_places=2)           # a reseller billing to the cent
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [("44", "GB", "0.10")], short_call=(6, "0.02")))
    short, normal = add_call(account, UK, 5), add_call(account, UK, 6)
    rated(tenant.id, [short, normal])
    assert (call(short).cost, call(normal).cost) == (Decimal("0.03"), Decimal("0.01"))


def test_the_short_call_charge_is_rounded_once_with_the_call_at_four_places(app, make_tenant, make_account):
    tenant = make_tenant()                               # a new reseller: 4 places
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [("44", "GB", "0.10")], short_call=(6, "0.02")))
    short, normal = add_call(account, UK, 5), add_call(account, UK, 6)
    rated(tenant.id, [short, normal])
    # 5 s × 0.10/60 = 0.008333… + 0.02 = 0.028333… -> 0.0283 (once); 6 s = 0.0100
    assert (call(short).cost, call(normal).cost) == (Decimal("0.0283"), Decimal("0.0100"))
    assert balance(account.id) == Decimal("9.9617") and no_mismatch()
    assert call_entries(account.id) == [(f"call:{short}", Decimal("-0.0283")), (f"call:{normal}", Decimal("-0.0100"))]


def test_a_new_price_takes_effect_on_its_date_and_earlier_calls_keep_the_old_one(app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    sheet = make_sheet(tenant, [("44", "GB", "0.60", "0", 60, 60),
                                ("44", "GB", "1.20", "0", 60, 60, "0", date(2025, 6, 1))])
    give_plan(account, sheet)
    before = add_call(account, UK, 60, datetime(2025, 5, 31, 23, 59, 0))
    on_the_day = add_call(account, UK, 60, datetime(2025, 6, 1, 0, 0, 1))
    rated(tenant.id, [before, on_the_day])
    assert (call(before).cost, call(on_the_day).cost) == (Decimal("0.60"), Decimal("1.20"))
    assert call(before).rate_id != call(on_the_day).rate_id


def test_the_buy_cost_comes_from_the_sheet_the_parent_assigned_to_the_reseller(app, make_tenant, make_account):
    parent = make_tenant()
    child = make_tenant(parent=parent)
    buy_sheet = make_sheet(parent, [("44", "GB", "0.06", "0", 60, 60)], name="Wholesale")
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == child.id)).scalar_one().buy_rate_sheet_id = buy_sheet
        db.session.commit()
    account = make_account(child, credit="10")
    give_plan(account, make_sheet(child, [UK_ROW]), [("GB", 1)])
    other = make_account(parent, credit="10")                  # the parent has no buy sheet of its own
    give_plan(other, make_sheet(parent, [UK_ROW]))
    inside_bundle, unanswered = add_call(account, UK, 47), add_call(account, UK, 0)
    no_buy_sheet = add_call(other, UK, 47)

    rated(child.id, [inside_bundle, unanswered])
    rated(parent.id, [no_buy_sheet])

    assert call(inside_bundle).cost == Decimal("0")          # the customer's bundle...
    assert call(inside_bundle).buy_cost == Decimal("0.06")   # ...still costs the reseller a minute
    assert call(unanswered).buy_cost == Decimal("0")
    assert call(no_buy_sheet).buy_cost is None and call(no_buy_sheet).cost == Decimal("0.13")


def test_a_buy_sheet_in_another_currency_gives_no_buy_price(app, make_tenant, make_account):
    """No currency conversion: such calls show as having no buy price, never a sum of two currencies."""
    parent = make_tenant()
    child = make_tenant(parent=parent)
    buy_sheet = make_sheet(parent, [("44", "GB", "0.06", "0", 60, 60)], name="Wholesale EUR", currency="EUR")
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == child.id)).scalar_one().buy_rate_sheet_id = buy_sheet
        db.session.commit()
    account = make_account(child, credit="10")               # a USD account
    give_plan(account, make_sheet(child, [UK_ROW]))
    call_id = add_call(account, UK, 47)
    rated(child.id, [call_id])
    assert call(call_id).cost == Decimal("0.13") and call(call_id).buy_cost is None


def test_rating_twice_changes_nothing(app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]), [("GB", 1)])
    ids = [add_call(account, UK, 47), add_call(account, UK, 100)]
    first = rated(tenant.id, ids)
    again = rated(tenant.id, ids)
    assert (first.rated, again.rated, again.skipped, again.charged) == (2, 0, 2, 0)
    assert len(call_entries(account.id)) == 1 and balance(account.id) == Decimal("9.85")  # 87 s -> 90 s
    with unscoped():
        assert db.session.scalar(select(BundleUsage.seconds_used)) == 60
    assert no_mismatch()


def test_calls_of_another_tenant_are_not_rated_in_this_scope(app, make_tenant, make_account):
    a, b = make_tenant(), make_tenant()
    account_b = make_account(b, credit="10")
    give_plan(account_b, make_sheet(b, [UK_ROW]))
    foreign = add_call(account_b, UK, 47)
    summary = rated(a.id, [foreign])
    assert (summary.rated, summary.skipped) == (0, 1) and call(foreign).rated_at is None


def test_the_rating_job_rates_every_pending_call_once_even_when_run_twice(app, make_tenant, make_account):
    tenants = [make_tenant(), make_tenant()]
    ids = []
    for tenant in tenants:
        account = make_account(tenant, credit="100")
        give_plan(account, make_sheet(tenant, [UK_ROW]))
        ids += [add_call(account, UK, 10 + n) for n in range(7)]

    first = rate_pending_calls(batch_size=3)
    second = rate_pending_calls(batch_size=3)

    assert (first["rated"], first["charged"], second["rated"]) == (14, 14, 0)
    assert ledger_count() == 14 and all(call(i).rated_at for i in ids)
    assert no_mismatch()


def test_the_cron_entry_queues_one_rating_job_per_minute_and_rq_runs_it(app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="100")
    give_plan(account, make_sheet(tenant, [UK_ROW]))
    pending = add_call(account, UK, 47)
    q = jobs.queue(app)
    enqueue_rating()
    enqueue_rating()                                      # a doubled cron tick
    assert q.count == 1 and q.job_ids[0] == rating_job_id()
    SimpleWorker([q], connection=q.connection).work(burst=True)
    assert call(pending).cost == Decimal("0.13")
    # the same job run again (a retried or re-enqueued run) changes nothing
    q.enqueue(rate_pending_calls, tenant.id)
    SimpleWorker([q], connection=q.connection).work(burst=True)
    assert call_entries(account.id) == [(f"call:{pending}", Decimal("-0.13"))]
    assert no_mismatch()


def test_rating_job_ids_are_deterministic_per_minute():
    assert rating_job_id(datetime(2025, 5, 1, 13, 7, 59)) == "rate-pending-calls-202505011307"


def test_the_bulk_path_stores_calls_already_rated_with_the_same_results(app, make_tenant, make_account):
    from app.calls.models import Call
    from app.rating.cdr import CallRecord, store_rated_calls

    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]), [("GB", 1)])
    records = [CallRecord(account.id, "pbx9", f"bulk.{n}", UK, datetime(2025, 5, 3, 9, n), billsec)
               for n, billsec in enumerate([40, 100, 10, 0])]
    with tenant_scope(tenant.id):
        summary = store_rated_calls(records + [records[0]])          # a repeated record is stored once
        db.session.commit()
    assert (summary.rated, summary.charged, summary.skipped) == (4, 2, 1)
    with unscoped():
        stored = list(db.session.execute(select(Call).where(Call.server == "pbx9").order_by(Call.uniqueid)))
        rows = [(c.uniqueid, c.bundle_seconds, c.charged_seconds, c.cost) for (c,) in stored]
    # as in the bundle test: 40 s free, then 20 s of bundle and 84 s charged, then the full formula
    assert rows == [("bulk.0", 40, 0, Decimal("0")), ("bulk.1", 20, 84, Decimal("0.14")),
                    ("bulk.2", 0, 30, Decimal("0.10")), ("bulk.3", 0, 0, Decimal("0"))]
    assert all(c.rated_at is not None for (c,) in stored)
    keys = {k for k, _ in call_entries(account.id)}
    assert keys == {f"call:{c.id}" for (c,) in stored if c.cost > 0}
    assert balance(account.id) == Decimal("9.76") and no_mismatch()
    with tenant_scope(tenant.id):                                     # sent again: nothing changes
        again = store_rated_calls(records)
        db.session.commit()
    assert (again.rated, again.skipped) == (0, 4) and balance(account.id) == Decimal("9.76")


def test_the_bulk_path_skips_records_of_accounts_outside_the_scope(app, make_tenant, make_account):
    from app.calls.models import Call
    from app.rating.cdr import CallRecord, store_rated_calls

    mine, theirs = make_tenant(), make_tenant()
    account, stranger = make_account(mine, credit="10"), make_account(theirs, credit="10")
    for a, t in ((account, mine), (stranger, theirs)):
        give_plan(a, make_sheet(t, [UK_ROW]))
    records = [CallRecord(a.id, "pbx8", f"scope.{n}", UK, datetime(2025, 5, 3, 9, n), 60)
               for n, a in enumerate([stranger, account, stranger, account])]
    with tenant_scope(mine.id):
        summary = store_rated_calls(records)
        db.session.commit()
    assert (summary.rated, summary.charged, summary.skipped) == (2, 2, 2)
    with unscoped():
        stored = db.session.execute(select(Call.uniqueid, Call.account_id, Call.tenant_id)
                                    .where(Call.server == "pbx8").order_by(Call.uniqueid)).all()
    assert stored == [("scope.1", account.id, mine.id), ("scope.3", account.id, mine.id)]
    assert balance(stranger.id) == Decimal("10") and len(call_entries(stranger.id)) == 0 and no_mismatch()


def test_the_bulk_path_agrees_with_bundles_rate_call_on_random_calls(app, make_tenant, make_account):
    """The writer rates bundle calls with integers where it can: every call, in start order,
    must get what app.rating.bundles.rate_call gives with the bundle seconds left then."""
    import random

    from app.calls.models import Call
    from app.rating.bundles import rate_call
    from app.rating.cdr import CallRecord, store_rated_calls
    from app.rating.cost import ShortCallCharge, Tariff

    rng = random.Random(7)
    tenant = make_tenant()
    account = make_account(tenant, credit="1000")
    give_plan(account, make_sheet(tenant, [UK_ROW], short_call=(8, "0.02")), [("GB", 3)])   # 180 s a month
    tariff = Tariff("44", "GB", "", Decimal("0.10"), Decimal("0.05"), 30, 6)
    short = ShortCallCharge(8, Decimal("0.02"))
    durations = [rng.choice([0, 3, 7, 9, 31, 45, 61, 200]) for _ in range(40)]
    records = [CallRecord(account.id, "pbx8", f"rand.{n:02d}", UK, datetime(2025, 5, 3, 9, n), d)
               for n, d in enumerate(durations)]
    rng.shuffle(records)                                               # any arrival order
    with tenant_scope(tenant.id):
        store_rated_calls(records)
        db.session.commit()
    left, expected = 180, []
    for d in durations:
        r = rate_call(d, tariff, "USD", bundle_remaining_seconds=left, short_call=short)
        left -= r.bundle_seconds
        expected.append((r.bundle_seconds, r.charged_seconds if d else 0, r.cost))
    with unscoped():
        got = [(c.bundle_seconds, c.charged_seconds, c.cost) for c in db.session.execute(
            select(Call).where(Call.server == "pbx8").order_by(Call.uniqueid)).scalars()]
    assert got == expected
    assert sum(b for b, _, _ in got) == 180 and no_mismatch()


def test_a_batch_mixing_stored_and_new_calls_charges_and_counts_bundle_seconds_once(app, make_tenant, make_account):
    """The first, optimistic write meets a stored call: its savepoint is rolled back with the
    bundle and ledger moves it made, and the batch is written again without that call."""
    from app.rating.cdr import CallRecord, store_rated_calls

    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]), [("GB", 1)])
    first = CallRecord(account.id, "pbx7", "1762000000.1", UK, datetime(2025, 5, 3, 9, 0), 40)
    with tenant_scope(tenant.id):
        store_rated_calls([first])
        db.session.commit()
    later = [CallRecord(account.id, "pbx7", f"1762000100.{n}", UK, datetime(2025, 5, 3, 10, n), 30) for n in range(2)]
    with tenant_scope(tenant.id):
        summary = store_rated_calls([first] + later)
        db.session.commit()
    assert (summary.rated, summary.skipped, summary.charged) == (2, 1, 2)
    with unscoped():
        used = db.session.execute(select(BundleUsage.seconds_used).where(BundleUsage.account_id == account.id)).scalar_one()
    assert used == 60                     # 40 s, then the 20 s left of the minute: never 40 twice
    # the first later call: 10 s past the bundle, rounded to the 6 s increment (0.02); the next in full
    assert sorted(a for _, a in call_entries(account.id)) == [Decimal("-0.10"), Decimal("-0.02")]
    assert balance(account.id) == Decimal("9.88") and no_mismatch()


def test_post_many_with_new_keys_falls_back_when_a_key_was_taken(app, make_tenant, make_account):
    tenant = make_tenant()
    a = make_account(tenant, credit="10")
    with tenant_scope(tenant.id):
        ledger.post(a.id, Decimal("-1"), "call", "call:taken")
        created = ledger.post_many([ledger.Entry(a.id, Decimal("-2"), "call", "call:taken"),
                                    ledger.Entry(a.id, Decimal("-0.5"), "call", "call:new")], new_keys=True)
        db.session.commit()
    assert created == {(a.id, "call:new")}
    assert balance(a.id) == Decimal("8.5") and ledger_count("call") == 2 and no_mismatch()


def test_post_many_posts_each_key_once_and_keeps_balance_equal_to_the_ledger(app, make_tenant, make_account):
    tenant = make_tenant()
    a, b = make_account(tenant, credit="10"), make_account(tenant, credit="5")
    with tenant_scope(tenant.id):
        ledger.post(a.id, Decimal("-1"), "call", "k2")                # taken already
        created = ledger.post_many([ledger.Entry(a.id, Decimal("-0.5"), "call", "k1"),
                                    ledger.Entry(a.id, Decimal("-2"), "call", "k2"),
                                    ledger.Entry(b.id, Decimal("-0.25"), "call", "k1"),
                                    ledger.Entry(a.id, Decimal("-0.125"), "call", "k3"),
                                    ledger.Entry(a.id, Decimal("-9"), "call", "k1")])   # same key twice: first wins
        db.session.commit()
    assert created == {(a.id, "k1"), (b.id, "k1"), (a.id, "k3")}
    assert balance(a.id) == Decimal("8.37") and balance(b.id) == Decimal("4.75")     # -0.125 rounds to -0.13
    with unscoped():
        from app.ledger import LedgerEntry
        afters = [e.balance_after for e in db.session.execute(
            select(LedgerEntry).where(LedgerEntry.account_id == a.id).order_by(LedgerEntry.id)).scalars()]
    assert afters == [Decimal("10"), Decimal("9"), Decimal("8.5"), Decimal("8.37")]
    assert no_mismatch()


def test_post_many_by_copy_rounds_each_amount_once_and_writes_running_balances(app, make_tenant, make_account):
    """The COPY path (new keys): amounts rounded per currency by money.quantize, balance_after
    from integer running sums, through zero into the negative (a postpaid account)."""
    tenant = make_tenant()
    usd = make_account(tenant, credit="0.10", billing_type="postpaid", credit_limit=Decimal("100"))
    jpy = make_account(tenant, credit="100", currency="JPY")
    kwd = make_account(tenant, credit="1", currency="KWD")
    entries = [(usd, "-0.125"), (jpy, "-0.5"), (usd, "-0.125"), (kwd, "-0.0005"), (usd, "0.004"),
               (jpy, "-1234.4"), (kwd, "-1.2344"), (usd, "-1000000.005")]
    with tenant_scope(tenant.id):
        created = ledger.post_many([ledger.Entry(a.id, Decimal(m), "call", f"call:copy{i}")
                                    for i, (a, m) in enumerate(entries)], new_keys=True)
        db.session.commit()
    assert len(created) == len(entries)
    with unscoped():
        from app.ledger import LedgerEntry
        rows = db.session.execute(select(LedgerEntry.account_id, LedgerEntry.amount, LedgerEntry.balance_after)
                                  .where(LedgerEntry.kind == "call").order_by(LedgerEntry.id)).all()
    by_account = {}
    for account_id, amount, after in rows:
        by_account.setdefault(account_id, []).append((amount, after))
    assert by_account[usd.id] == [(Decimal("-0.13"), Decimal("-0.03")), (Decimal("-0.13"), Decimal("-0.16")),
                                  (Decimal("0.00"), Decimal("-0.16")),
                                  (Decimal("-1000000.01"), Decimal("-1000000.17"))]
    assert by_account[jpy.id] == [(Decimal("-1"), Decimal("99")), (Decimal("-1234"), Decimal("-1135"))]
    assert by_account[kwd.id] == [(Decimal("-0.001"), Decimal("0.999")), (Decimal("-1.234"), Decimal("-0.235"))]
    assert balance(usd.id) == Decimal("-1000000.17") and balance(jpy.id) == Decimal("-1135")
    assert balance(kwd.id) == Decimal("-0.235") and no_mismatch()


def test_post_many_keeps_the_places_each_entry_asks_for(app, make_tenant, make_account):
    """Call charges at a call charge precision (Entry.places) are kept to that many decimals,
    by COPY and by INSERT alike; an entry without places rounds to the minor unit."""
    tenant = make_tenant()
    usd = make_account(tenant, credit="1")
    jpy = make_account(tenant, credit="100", currency="JPY")
    entries = [(usd, "-0.00125", 4), (usd, "-0.00124", 4), (usd, "-0.125", 3), (usd, "-0.125", None),
               (jpy, "-0.42", 4), (jpy, "-0.5", None)]
    for new_keys in (True, False):
        with tenant_scope(tenant.id):
            ledger.post_many([ledger.Entry(a.id, Decimal(m), "call", f"call:places{new_keys}{i}", "", p)
                              for i, (a, m, p) in enumerate(entries)], new_keys=new_keys)
            db.session.commit()
    with unscoped():
        from app.ledger import LedgerEntry
        rows = db.session.execute(select(LedgerEntry.account_id, LedgerEntry.amount)
                                  .where(LedgerEntry.kind == "call").order_by(LedgerEntry.id)).all()
    once = [Decimal("-0.0013"), Decimal("-0.0012"), Decimal("-0.125"), Decimal("-0.13"),
            Decimal("-0.42"), Decimal("-1")]
    assert [amount for _, amount in rows] == once + once
    assert balance(usd.id) == Decimal("1") - 2 * Decimal("0.2575")
    assert balance(jpy.id) == Decimal("100") - 2 * Decimal("1.42") and no_mismatch()


def test_the_rating_job_starts_no_new_batch_after_its_time_limit(app, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="100")
    give_plan(account, make_sheet(tenant, [UK_ROW]))
    ids = [add_call(account, UK, 10) for _ in range(3)]
    assert rate_pending_calls(tenant.id, batch_size=1, time_limit=0)["rated"] == 0
    assert rate_pending_calls(tenant.id, batch_size=1)["rated"] == 3 and all(call(i).rated_at for i in ids)
