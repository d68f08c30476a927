"""Payments: Stripe top-ups and webhooks, manual payments, history (docs/payments.md)."""
