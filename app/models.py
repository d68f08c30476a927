"""Import every model module so the metadata (and Alembic) sees all tables."""
from app.accounts import Account  # noqa: F401
from app.audit import AuditEntry  # noqa: F401
from app.billing.models import BundleUsage, PlanCountry, ServicePlan  # noqa: F401
from app.calls import Call  # noqa: F401
from app.ledger import LedgerEntry  # noqa: F401
from app.rating.models import Rate, RateSheet  # noqa: F401
from app.settings import PlatformSetting  # noqa: F401
from app.users import User  # noqa: F401
from provisioning.models import Extension  # noqa: F401
from tenants.models import Tenant  # noqa: F401
