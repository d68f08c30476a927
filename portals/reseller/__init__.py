from flask import Blueprint

bp = Blueprint("reseller", __name__, template_folder="templates")

from portals.access import guard_portal  # noqa: E402
from portals.auth import add_auth_routes  # noqa: E402

guard_portal(bp, {"reseller_owner", "reseller_staff", "reseller_readonly"}, "reseller")
add_auth_routes(bp, "reseller")

from portals.reseller import routes  # noqa: E402,F401
from portals.reseller import accounts_list  # noqa: E402,F401
from portals.reseller import onboarding, account_page, numbers, account_templates  # noqa: E402,F401
from portals.reseller import rates, reports  # noqa: E402,F401
from portals.reseller import account_profile, in_use, account_extras, orders, payments, settings  # noqa: E402,F401
from portals.reseller import trunks  # noqa: E402,F401
from portals.reseller import invoices  # noqa: E402,F401
from portals.reseller import taxes  # noqa: E402,F401

from portals import calls as _calls  # noqa: E402

_calls.register(bp, "reseller")

from portals import limits as _limits  # noqa: E402

_limits.register(bp, "reseller")

from portals import billing_runs as _billing_runs  # noqa: E402

_billing_runs.register(bp, "reseller")
