"""Messages that say what is wrong (issue 14, point 7): letters in a base extension, a decimal
comma, a bad date range, and a low-balance letter that states the balance and threshold truly."""
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.money import MoneyError, parse_amount
from app.notifications.models import Notification
from app.notifications.outbox import low_balance_alert
from app.extensions import db
from tenants.scope import unscoped


@pytest.mark.parametrize("typed", ["1.000,50", "10,50", "-2,5", "12.345.678,9"])
def test_a_decimal_comma_gets_a_hint_about_the_separator(typed):
    with pytest.raises(MoneyError, match="use a dot for decimals"):
        parse_amount(typed)


@pytest.mark.parametrize("typed, value", [("1,000.50", "1000.50"), ("1,000", "1000"), ("10.50", "10.50")])
def test_thousands_commas_and_decimal_dots_still_parse(typed, value):
    assert parse_amount(typed) == Decimal(value)


def test_letters_in_a_base_extension_say_use_digits_only(world, new_client, login):
    admin = login(new_client(), world.admin)
    resp = admin.post("/admin/resellers/new", data={"name": "Digits Co", "slug": "digits-co", "email": "d@d.example",
                                                    "currency": "USD", "base_extension": "10a0",
                                                    "parent_id": str(world.a.parent_id)})
    assert resp.status_code == 422 and "Use digits only." in resp.get_data(as_text=True)
    resp = admin.post("/admin/settings", data={"account_number_length": "10", "pin_length": "6",
                                               "base_extension": "one thousand"})
    assert resp.status_code == 422 and "Use digits only." in resp.get_data(as_text=True)


def test_a_bad_date_range_says_so_next_to_the_field(world, new_client, login):
    customer = login(new_client(), world.customer_a)
    html = customer.get("/portal/per-minute?from=2026-12-10&to=2026-12-01").get_data(as_text=True)
    assert "The end date is before the start date." in html
    html = customer.get("/portal/per-minute?from=2026-13-40").get_data(as_text=True)
    assert "is not a date: use YYYY-MM-DD." in html


@pytest.mark.parametrize("balance, threshold, says, never", [
    ("3.00", "5.00", "below your alert level of $5.00", "your alert level is"),
    ("8.00", "5.00", "your alert level is $5.00", "below your alert level"),
])
def test_the_low_balance_letter_states_the_balance_and_threshold_truthfully(app, make_tenant, make_account,
                                                                           balance, threshold, says, never):
    account = make_account(make_tenant(), credit=balance, low_balance_threshold=Decimal(threshold))
    with unscoped():
        low_balance_alert(account)
        db.session.commit()
        body = db.session.execute(select(Notification.body).where(Notification.account_id == account.id)).scalar_one()
    assert f"is ${balance}" in body and says in body and never not in body
