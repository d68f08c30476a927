"""POST /webhooks/stripe[/<tenant key>]: thin; app/payments/webhooks.py does the work."""
from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select

from app.extensions import csrf, db
from app.payments import webhooks
from tenants.models import Tenant
from tenants.scope import unscoped

bp = Blueprint("webhooks", __name__)


def _receive(webhook_key):
    with unscoped():
        try:
            secret, tenant_id = webhooks.secret_for(webhook_key)
        except LookupError:
            abort(404)
        try:
            event = webhooks.verify(request.get_data(), request.headers.get("Stripe-Signature", ""), secret)
        except webhooks.BadSignature as exc:
            return jsonify(error=f"invalid signature: {exc}"), 400
        root = db.session.execute(select(Tenant.id).where(Tenant.parent_id.is_(None))
                                  .order_by(Tenant.id).limit(1)).scalar_one()
        outcome = webhooks.record_event(event, tenant_id, root)
        db.session.commit()
    return jsonify(received=True, outcome=outcome)


@bp.post("/webhooks/stripe")
@csrf.exempt
def stripe_platform():
    return _receive(None)


@bp.post("/webhooks/stripe/<webhook_key>")
@csrf.exempt
def stripe_tenant(webhook_key):
    return _receive(webhook_key)
