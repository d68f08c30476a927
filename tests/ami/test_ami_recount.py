"""The in-use recount (issue 20, point 3) end to end: a Hangup the watcher never saw leaves a
call counted; the reseller's Recount button (a real request through the portal) makes the
watcher count again from the switch's own channel list, and the page shows the truth."""
import asyncio
import re

from tests.ami.db_harness import admitted, calling_account, run_db_world
from tests.ami.harness import eventually

UK = "442071234567"


def _figure(html):
    return re.search(r'<span id="in-use-\d+" class="in-use[^"]*">([^<]*)</span>', html).group(1)


def test_recount_from_the_account_page_realigns_a_count_the_switch_disagrees_with(
        app, make_tenant, make_account, make_login, new_client, login):
    from tenants.models import Tenant
    from tenants.scope import unscoped
    from app.extensions import db

    account, exts = calling_account(make_tenant, make_account, credit="50.00", users=2)
    with unscoped():
        tenant = db.session.get(Tenant, account.tenant_id)
    owner = login(new_client(), make_login(tenant, "reseller_owner"))
    page = f"/reseller/accounts/{account.id}"

    async def scenario(w):
        kept = w.call(exts[0][1], account.account_number, UK, answer=True)
        lost = w.call(exts[1][1], account.account_number, UK, answer=True)
        await admitted(w, account.account_number, 2)
        assert _figure(owner.get(page).get_data(as_text=True)) == "2"
        w.ami.hangup(lost, emit=False)           # the switch ended it; the watcher never heard
        await asyncio.sleep(0.2)
        assert await w.counts.account(account.account_number) == 2   # still counted: the drift
        before = w.watcher.links["pbx1"].reconciliations
        resp = owner.post(f"/reseller/in-use/recount?next={page}", follow_redirects=True)
        assert "Asked the switches for their live calls" in resp.get_data(as_text=True)
        await eventually(lambda: w.watcher.links["pbx1"].reconciliations > before, what="recount ran")
        await admitted(w, account.account_number, 1)
        poll = owner.get(f"/reseller/accounts/in-use?ids={account.id}").get_data(as_text=True)
        assert f'id="in-use-{account.id}"' in poll and 'hx-swap-oob="true"' in poll
        assert re.search(r'hx-swap-oob="true">\s*1\s*</span>', poll)
        w.ami.hangup(kept)
        await admitted(w, account.account_number, 0)

    run_db_world(app, scenario)
