"""Secrets at rest: Fernet (cryptography) with a key from PAYMENTS_ENCRYPTION_KEY.

Without that setting the key is derived from SECRET_KEY (HKDF), so a dev install works;
production sets its own Fernet key so rotating SECRET_KEY does not orphan the secrets."""
import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _fernet() -> Fernet:
    key = current_app.config.get("PAYMENTS_ENCRYPTION_KEY")
    if not key:
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ringledger-payments",
                   info=b"stripe-secrets").derive(current_app.config["SECRET_KEY"].encode())
        key = base64.urlsafe_b64encode(raw)
    return Fernet(key)


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("stored Stripe secret cannot be decrypted with the configured key") from exc
