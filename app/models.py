"""Import every model module so the metadata (and Alembic) sees all tables."""
from app.accounts.models import Account  # noqa: F401
from app.accounts.details import AccountDetails, CustomerGroup  # noqa: F401
from app.notifications.alerts import AccountAlert  # noqa: F401
from app.calls.servers import AsteriskServer  # noqa: F401
from app.audit import AuditEntry  # noqa: F401
from app.billing.account_templates import AccountTemplate  # noqa: F401
from app.billing.models import BundleUsage, PlanCountry, ServicePlan  # noqa: F401
from app.billing.cycle import ChargeRun, ChargeRunAccount, RecurringCharge  # noqa: F401
from app.billing.extras import Extra  # noqa: F401
from app.billing.orders import Order  # noqa: F401
from app.billing.plans import PlanName  # noqa: F401
from app.billing.user_changes import ScheduledUserChange  # noqa: F401
from app.calls.models import Call  # noqa: F401
from app.calls.switch_cdrs import SwitchCdr  # noqa: F401
from app.ledger import LedgerEntry  # noqa: F401
from app.invoicing.models import (AccountTax, Invoice, InvoiceLine, InvoicePayment, InvoiceRun,  # noqa: F401
                                  InvoiceRunAccount, InvoiceSequence, InvoiceSettings, InvoiceTax, Receipt,
                                  Statement, StatementLine, Tax)
from app.notifications.models import Notification  # noqa: F401
from app.payments.models import Payment, StripeSettings, WebhookEvent  # noqa: F401
from app.logins.preferences import UserPreference  # noqa: F401
from app.rating.imports import RateImport  # noqa: F401
from app.rating.rerate import CallRerating  # noqa: F401
from app.rating.models import Rate, RateSheet  # noqa: F401
from app.settings import PlatformSetting  # noqa: F401
from app.logins.models import User  # noqa: F401
from app.numbers.models import Number  # noqa: F401
from provisioning.models import Extension  # noqa: F401
from provisioning.realtime import PsAor, PsAuth, PsEndpoint, PsEndpointIdIp  # noqa: F401
from provisioning.trunks import CustomerTrunk  # noqa: F401
from tenants.models import Tenant  # noqa: F401
from app.routing.cache_versions import CacheVersion  # noqa: F401
from app.routing.models import Carrier, CustomerRoute, NumberRule, Route, RouteCarrier, RouteGroup, TranslationRule  # noqa: F401
