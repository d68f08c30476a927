"""i18_payments on a database built at its down_revision: existing rows survive, new tables work."""
import re
from decimal import Decimal

from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.config import BASE_DIR
from app.extensions import db
from tests.conftest import TestConfig

SCRIPT = BASE_DIR / "migrations" / "versions" / "i18_payments.py"


def test_upgrade_from_down_revision_keeps_rows(tmp_path):
    down = re.search(r"^down_revision = ['\"](.+?)['\"]", SCRIPT.read_text(), re.M).group(1)

    class MigConfig(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'm.db'}"
        SQLALCHEMY_ENGINE_OPTIONS = {}
    app = create_app(MigConfig)
    with app.app_context():
        directory = str(BASE_DIR / "migrations")
        upgrade(directory=directory, revision=down)
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO tenants (id, path, name, slug, status, email, currency, base_extension,"
                              " created_at) VALUES (1, '/1/', 'Root', 'root', 'active', '', 'USD', 1000, '2026-01-01')"))
        upgrade(directory=directory, revision="i18_payments")
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM tenants WHERE id = 1")).scalar_one() == "Root"
            conn.execute(text("INSERT INTO stripe_settings (tenant_id, webhook_key, secret_key_encrypted,"
                              " publishable_key, webhook_secret_encrypted, topup_min, topup_max, topup_presets,"
                              " updated_at) VALUES (1, 'k', '', '', '', 5, 500, '10,25', '2026-01-01')"))
            assert conn.execute(text("SELECT topup_max FROM stripe_settings")).scalar_one() == Decimal("500")
        db.session.remove()
        db.engine.dispose()
