"""Demo data for a first run: `flask demo`. Idempotent: does nothing if the platform exists."""
from decimal import Decimal

from sqlalchemy import select

from app.account_operations import create_account
from app.auth import create_login
from app.extensions import db
from tenants.models import ROOT_SLUG, Tenant, place_in_tree
from tenants.operations import create_tenant

PASSWORD = "ringledger"
DEMO_LOGINS = [
    ("Platform admin  /admin", "admin@ringledger.example", PASSWORD),
    ("Reseller owner  /reseller", "owner@acme.example", PASSWORD),
    ("Reseller staff  /reseller", "staff@acme.example", PASSWORD),
    ("Sub-reseller    /reseller", "owner@acme-north.example", PASSWORD),
    ("Reseller owner  /reseller", "owner@bluetel.example", PASSWORD),
    ("Account admin   /portal", "admin@harbourcafe.example", PASSWORD),
    ("Account admin   /portal", "admin@nordlaw.example", PASSWORD),
]


def ensure_platform() -> Tenant:
    """The root tenant: the platform operator itself."""
    root = db.session.execute(
        select(Tenant).where(Tenant.slug == ROOT_SLUG).execution_options(all_tenants=True)
    ).scalar_one_or_none()
    if root is None:
        root = Tenant(name="Ringledger Platform", slug=ROOT_SLUG, path="/", email="ops@ringledger.example")
        db.session.add(root)
        db.session.flush()
        place_in_tree(root, None)
        db.session.flush()
    return root


def load_demo() -> bool:
    """Create the demo tree; run inside `unscoped()`. Returns False if already there."""
    if db.session.execute(
        select(Tenant.id).where(Tenant.slug == "acme").execution_options(all_tenants=True)
    ).first():
        return False
    root = ensure_platform()
    create_login(tenant_id=root.id, email="admin@ringledger.example", name="Platform Admin",
                 role="platform_admin", password=PASSWORD)
    acme = create_tenant(name="Acme Voice", slug="acme", parent_id=root.id, email="sales@acme.example",
                         base_extension=2000)
    north = create_tenant(name="Acme North", slug="acme-north", parent_id=acme.id,
                          email="north@acme.example", base_extension=3000)
    blue = create_tenant(name="Blue Telecom", slug="bluetel", parent_id=root.id,
                         email="hello@bluetel.example", currency="EUR", base_extension=5000)
    create_login(tenant_id=acme.id, email="owner@acme.example", name="Alice Acme", role="reseller_owner", password=PASSWORD)
    create_login(tenant_id=acme.id, email="staff@acme.example", name="Sam Staff", role="reseller_staff", password=PASSWORD)
    create_login(tenant_id=north.id, email="owner@acme-north.example", name="Nina North", role="reseller_owner", password=PASSWORD)
    create_login(tenant_id=blue.id, email="owner@bluetel.example", name="Bruno Blue", role="reseller_owner", password=PASSWORD)

    accounts = [
        (acme, "Harbour Cafe", "admin@harbourcafe.example", "prepaid", "USD", "25.00", "0"),
        (acme, "Quayside Dental", "office@quayside.example", "postpaid", "USD", "0", "200.00"),
        (north, "Fjord Freight", "it@fjordfreight.example", "prepaid", "USD", "80.00", "0"),
        (blue, "Nord Law Partners", "admin@nordlaw.example", "postpaid", "EUR", "0", "500.00"),
        (blue, "Pixel Studio", "hi@pixelstudio.example", "prepaid", "EUR", "12.50", "0"),
    ]
    for tenant, name, email, terms, currency, credit, limit in accounts:
        account = create_account(tenant_id=tenant.id, name=name, email=email, billing_type=terms,
                                 currency=currency, initial_credit=Decimal(credit),
                                 credit_limit=Decimal(limit), company=name, country="US" if currency == "USD" else "DE")
        if email.startswith("admin@"):
            create_login(tenant_id=tenant.id, account_id=account.id, email=email, name=f"{name} admin",
                         role="account_admin", password=PASSWORD)
    return True
