"""POST /webhooks/stripe[/<tenant key>]: thin; app/payments/webhooks.py does the work."""
from flask import Blueprint, abort, jsonify, request

from app.extensions import csrf, db
from app.payments import webhooks
from tenants.scope import unscoped

bp = Blueprint("webhooks", __name__)


def _receive(webhook_key):
    with unscoped():
        try:
            event, tenant_id = webhooks.verified_event(webhook_key, request.get_data(),
                                                       request.headers.get("Stripe-Signature", ""))
        except LookupError:
            abort(404)
        except webhooks.BadSignature as exc:
            return jsonify(error=f"invalid signature: {exc}"), 400
        outcome = webhooks.record_event(event, tenant_id)
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
