from flask import Blueprint

bp = Blueprint("admin", __name__, template_folder="templates")

from portals.access import guard_portal  # noqa: E402
from portals.auth import add_auth_routes  # noqa: E402

guard_portal(bp, {"platform_admin", "platform_subadmin"}, "admin")
add_auth_routes(bp, "admin")

from portals.admin import routes  # noqa: E402,F401
from portals.admin import settings  # noqa: E402,F401
from portals.admin import numbers  # noqa: E402,F401
from portals.admin import servers  # noqa: E402,F401
from portals.admin import admins  # noqa: E402,F401
from portals.admin import carriers  # noqa: E402,F401

from portals import calls as _calls  # noqa: E402

_calls.register(bp, "admin")

from portals import limits as _limits  # noqa: E402

_limits.register(bp, "admin")

from portals import billing_runs as _billing_runs  # noqa: E402

_billing_runs.register(bp, "admin")
