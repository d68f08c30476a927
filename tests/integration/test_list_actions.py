"""More actions from the accounts list (issue 20, point 2): reset balance (with a reason), close,
send the welcome letter, send the low-balance alert, save as template; each on one or many
accounts, confirmed first, audited, idempotent (the confirmation's nonce keys every effect)."""
import re
from decimal import Decimal

from sqlalchemy import func, select

from app.accounts.models import Account
from app.audit import AuditEntry
from app.billing.account_templates import AccountTemplate
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from app.notifications.models import Notification
from tenants.scope import unscoped

LIST = "/reseller/accounts"


def _confirm(client, action, *ids):
    resp = client.post(LIST + "/bulk/confirm", data={"list_action": action, "ids": [str(i) for i in ids],
                                                     "next": LIST})
    assert resp.status_code == 200, resp.status_code
    html = resp.get_data(as_text=True)
    return html, re.search(r'name="nonce" value="([0-9a-f]+)"', html).group(1)


def _apply(client, action, ids, nonce, **fields):
    data = {"list_action": action, "ids": [str(i) for i in ids], "nonce": nonce, "next": LIST, **fields}
    return client.post(LIST + "/bulk/apply", data=data, follow_redirects=True)


def _account(account_id):
    with unscoped():
        db.session.expire_all()
        return db.session.get(Account, account_id)


def test_reset_many_balances_once_with_a_reason(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    a, a2 = world.account_a, world.account_a2
    page, nonce = _confirm(owner, "reset", a.id, a2.id)
    assert a.account_number in page and a2.account_number in page and "Reset each balance to" in page
    refused = _apply(owner, "reset", [a.id, a2.id], nonce, amount="2", confirm="1")
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    unticked = _apply(owner, "reset", [a.id, a2.id], nonce, amount="2", reason="Promo ended")
    assert unticked.status_code == 422 and "Tick the box to confirm." in unticked.get_data(as_text=True)
    done = _apply(owner, "reset", [a.id, a2.id], nonce, amount="2", reason="Promo ended", confirm="1")
    assert "Reset the balance: 2 accounts done." in done.get_data(as_text=True)
    again = _apply(owner, "reset", [a.id, a2.id], nonce, amount="2", reason="Promo ended", confirm="1")
    assert "0 accounts done" in again.get_data(as_text=True) and "already done" in again.get_data(as_text=True)
    assert _account(a.id).balance == 2 and _account(a2.id).balance == 2
    with unscoped():
        entries = db.session.execute(select(LedgerEntry.description).where(LedgerEntry.kind == "adjustment")).scalars().all()
        assert len(entries) == 2 and all("Promo ended" in e for e in entries)
        assert balance_mismatches() == []
        entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "accounts.list_action")).scalar_one()
        assert entry.details["list_action"] == "reset" and entry.details["count"] == 2


def test_a_prepaid_reset_below_zero_and_a_large_one_are_refused_per_account(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    _, nonce = _confirm(owner, "reset", world.account_a.id)
    below = _apply(owner, "reset", [world.account_a.id], nonce, amount="-5", reason="x", confirm="1")
    assert "cannot be reset below zero" in below.get_data(as_text=True)
    _, nonce = _confirm(owner, "reset", world.account_a.id)
    large = _apply(owner, "reset", [world.account_a.id], nonce, amount="5000", reason="x", confirm="1")
    assert "above the adjustment limit" in large.get_data(as_text=True) and _account(world.account_a.id).balance == 10
    ok = _apply(owner, "reset", [world.account_a.id], nonce, amount="5000", reason="x", confirm="1", confirm_large="1")
    assert "1 account done" in ok.get_data(as_text=True) and _account(world.account_a.id).balance == 5000


def test_close_skips_what_cannot_close_and_says_why(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    with unscoped():
        db.session.get(Account, world.account_a2.id).balance = Decimal("0")
        db.session.add(LedgerEntry(tenant_id=world.a.id, account_id=world.account_a2.id, amount=Decimal("-5"),
                                   kind="adjustment", idempotency_key="zero-a2", balance_after=Decimal("0")))
        db.session.commit()
    _, nonce = _confirm(owner, "close", world.account_a.id, world.account_a2.id)
    resp = _apply(owner, "close", [world.account_a.id, world.account_a2.id], nonce, reason="Contract over", confirm="1")
    text = resp.get_data(as_text=True)
    assert "1 account done" in text and "The balance is $10.00" in text
    assert _account(world.account_a2.id).status == "closed" and _account(world.account_a.id).status == "active"


def test_letters_go_once_per_confirmation(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    _, nonce = _confirm(owner, "welcome", world.account_a.id, world.account_a2.id)
    assert "2 accounts done" in _apply(owner, "welcome", [world.account_a.id, world.account_a2.id], nonce,
                                       confirm="1").get_data(as_text=True)
    assert "already sent" in _apply(owner, "welcome", [world.account_a.id, world.account_a2.id], nonce,
                                    confirm="1").get_data(as_text=True)
    _, other = _confirm(owner, "low_balance", world.account_a.id)
    _apply(owner, "low_balance", [world.account_a.id], other, confirm="1")
    with unscoped():
        kinds = db.session.execute(select(Notification.kind, func.count()).group_by(Notification.kind)).all()
    assert dict(kinds) == {"welcome": 2, "low_balance": 1}


def test_save_as_template_takes_exactly_one_account_and_a_name(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    two = owner.post(LIST + "/bulk/confirm", data={"list_action": "template", "next": LIST,
                                                   "ids": [str(world.account_a.id), str(world.account_a2.id)]},
                     follow_redirects=True)
    assert "select exactly one" in two.get_data(as_text=True)
    _, nonce = _confirm(owner, "template", world.account_a.id)
    nameless = _apply(owner, "template", [world.account_a.id], nonce, confirm="1")
    assert nameless.status_code == 422 and "Give the template a name." in nameless.get_data(as_text=True)
    assert "1 account done" in _apply(owner, "template", [world.account_a.id], nonce, template_name="Cafe plan",
                                      confirm="1").get_data(as_text=True)
    with unscoped():
        assert db.session.execute(select(AccountTemplate.name)).scalars().all() == ["Cafe plan"]


def test_another_resellers_accounts_are_never_touched(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    page, nonce = _confirm(owner, "reset", world.account_a.id, world.account_b.id)
    assert world.account_b.account_number not in page
    _apply(owner, "reset", [world.account_a.id, world.account_b.id], nonce, amount="1", reason="x", confirm="1")
    assert _account(world.account_b.id).balance == 20 and _account(world.account_a.id).balance == 1


def test_a_read_only_login_cannot_act(world, new_client, login, make_login):
    reader = login(new_client(), make_login(world.a, "reseller_readonly"))
    assert reader.post(LIST + "/bulk/confirm", data={"list_action": "reset", "ids": [str(world.account_a.id)]}).status_code == 403
    assert reader.post(LIST + "/bulk/apply", data={"list_action": "reset", "ids": [str(world.account_a.id)]}).status_code == 403
