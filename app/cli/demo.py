"""Demo data for a first run: `flask demo`. Idempotent: does nothing if the platform exists."""
from decimal import Decimal

from sqlalchemy import select

from app.logins.operations import create_login
from app.extensions import db
from tenants.models import ROOT_SLUG, Tenant, place_in_tree
from app.resellers.operations import create_tenant

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

    for tenant in (acme, north, blue):
        _demo_rate_sheet(tenant)
        _demo_numbers(tenant)
    accounts = [
        (acme, "Harbour Cafe", "admin@harbourcafe.example", "prepaid", "USD", "60.00", "0", 3, [("GB", 120), ("US", 0), ("DE", 0)]),
        (acme, "Quayside Dental", "office@quayside.example", "postpaid", "USD", "0", "200.00", 5, [("GB", 300), ("FR", 0)]),
        (north, "Fjord Freight", "it@fjordfreight.example", "prepaid", "USD", "80.00", "0", 2, [("NO", 60), ("GB", 0)]),
        (blue, "Nord Law Partners", "admin@nordlaw.example", "postpaid", "EUR", "0", "500.00", 4, [("DE", 200), ("GB", 0)]),
        (blue, "Pixel Studio", "hi@pixelstudio.example", "prepaid", "EUR", "25.00", "0", 1, [("DE", 0)]),
    ]
    for tenant, name, email, terms, currency, credit, limit, users, countries in accounts:
        account_id = _demo_account(tenant, name, email, terms, currency, credit, limit, users, countries)
        if name == "Harbour Cafe":
            _demo_calls(tenant, account_id)
    return True


DEMO_RATES = [  # prefix, country, description, per minute, connect, first block, increment
    ("44", "GB", "United Kingdom", "0.020", "0", 30, 6),
    ("447", "GB", "United Kingdom mobile", "0.080", "0.01", 30, 6),
    ("1", "US", "United States", "0.012", "0", 6, 6),
    ("49", "DE", "Germany", "0.025", "0", 30, 6),
    ("4915", "DE", "Germany mobile", "0.110", "0.01", 30, 6),
    ("33", "FR", "France", "0.030", "0", 30, 6),
    ("47", "NO", "Norway", "0.040", "0", 30, 6),
]


def _demo_rate_sheet(tenant):
    from app.rating.models import Rate, RateSheet

    sheet = RateSheet(tenant_id=tenant.id, name="Standard", currency=tenant.currency)
    db.session.add(sheet)
    db.session.flush()
    for prefix, country, description, per_minute, connect, first, inc in DEMO_RATES:
        db.session.add(Rate(tenant_id=tenant.id, rate_sheet_id=sheet.id, prefix=prefix, country=country,
                            description=description, rate_per_minute=Decimal(per_minute),
                            connect_fee=Decimal(connect), first_block=first, increment=inc))
    db.session.flush()
    tenant.demo_sheet_id = sheet.id


def _demo_numbers(tenant):
    from app.numbers.models import Number

    base = {"acme": 2079460100, "acme-north": 2079460200, "bluetel": 3012345600}[tenant.slug]
    prefix = "+44" if tenant.slug.startswith("acme") else "+49"
    for n in range(4):
        db.session.add(Number(tenant_id=tenant.id, number=f"{prefix}{base + n}", country=prefix == "+44" and "GB" or "DE",
                              setup_cost=Decimal("1.00"), monthly_cost=Decimal("2.00"), sell_setup=Decimal("2.00"),
                              sell_monthly=Decimal("4.00"), status="spare"))
    db.session.flush()


def _demo_account(tenant, name, email, terms, currency, credit, limit, users, countries):
    from app.billing.onboarding import BasicInfo, PlanTerms, onboard
    from app.numbers.models import Number
    from tenants.scope import tenant_scope

    with tenant_scope(tenant.id):
        spare = db.session.execute(select(Number.id).where(Number.tenant_id == tenant.id,
                                                           Number.status == "spare").limit(1)).scalars().all()
        info = BasicInfo(name=name, email=email, first_name=name.split()[0], last_name="Admin",
                         phone="+442079460018", country=countries[0][0], company=name, currency=currency)
        terms = PlanTerms(plan_name=f"{name} plan", users=users, cost_per_user=Decimal("4.00"),
                          initial_credit=Decimal(credit), rate_sheet_id=tenant.demo_sheet_id, number_ids=spare,
                          countries=countries, billing_type=terms, credit_limit=Decimal(limit), max_channels=users * 2,
                          portal_password=PASSWORD)
        return onboard(tenant_id=tenant.id, info=info, terms=terms).account.id


def _demo_calls(tenant, account_id):
    """Two weeks of calls, rated into the ledger, so reports and charts have something to show."""
    import random
    from datetime import timedelta

    from app.calls.models import Call
    from app.rating.cdr import rate_calls
    from tenants.models import utcnow
    from tenants.scope import tenant_scope

    rng = random.Random(7)
    now = utcnow().replace(microsecond=0)
    destinations = ["442071234567", "447700900123", "12125550100", "4930123456", "33142685300"]
    with tenant_scope(tenant.id):
        ids = []
        for i in range(60):
            start = now - timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 10), minutes=rng.randint(0, 59))
            billsec = rng.choice([0, 12, 47, 95, 180, 420])
            call = Call(tenant_id=tenant.id, account_id=account_id, server="demo", uniqueid=f"demo.{i}",
                        linkedid=f"demo.{i}", extension=str(tenant.base_extension), destination=rng.choice(destinations),
                        started_at=start, answered_at=start + timedelta(seconds=4) if billsec else None,
                        ended_at=start + timedelta(seconds=4 + billsec), billsec=billsec,
                        disposition="ANSWERED" if billsec else "NO ANSWER")
            db.session.add(call)
            db.session.flush()
            ids.append(call.id)
        rate_calls(ids)
