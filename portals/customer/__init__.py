from flask import Blueprint

bp = Blueprint("customer", __name__, template_folder="templates")

from portals.access import guard_portal  # noqa: E402
from portals.auth import add_auth_routes  # noqa: E402

guard_portal(bp, {"account_admin", "account_user"}, "customer")
add_auth_routes(bp, "customer")

from portals.customer import routes  # noqa: E402,F401
from portals.customer import self_service  # noqa: E402,F401
from portals.customer import reports  # noqa: E402,F401
from portals.customer import logins  # noqa: E402,F401
from portals.customer import payments  # noqa: E402,F401
from portals.customer import invoices  # noqa: E402,F401
