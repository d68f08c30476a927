"""The demo data a first run loads: logins that work, accounts with plans, rated calls, a true ledger."""
from sqlalchemy import func, select

from app.accounts.models import Account
from app.calls.models import Call
from app.cli.demo import DEMO_LOGINS, load_demo
from app.extensions import db
from app.ledger import balance_mismatches
from tenants.scope import unscoped


def test_the_demo_loads_once_and_every_listed_login_works(app, new_client):
    with unscoped():
        assert load_demo() is True
        db.session.commit()
        assert load_demo() is False
        assert db.session.scalar(select(func.count()).select_from(Account)) == 5
        assert db.session.scalar(select(func.count()).select_from(Call).where(Call.rated_at.is_not(None))) == 60
        assert balance_mismatches() == []
    for portal, email, password in DEMO_LOGINS:
        path = portal.split()[-1]
        client = new_client()
        resp = client.post(f"{path}/login", data={"email": email, "password": password})
        assert resp.status_code == 302, (email, resp.status_code)
        assert client.get(resp.headers["Location"]).status_code == 200
