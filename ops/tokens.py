"""Panoramax-compatible JWT tokens, signed with itsdangerous.

A Panoramax token is a compact JWS: ``b64url(header).b64url(claims).b64url(signature)`` with the header
``{"typ":"JWT","alg":"HS256"}``, the claims ``{"iss":"geovisio","sub":"<tokens.id>"}`` (compact JSON, no
padding) and an HMAC-SHA256 keyed with the raw secret. itsdangerous' ``Signer`` with ``key_derivation="none"``,
SHA-256 and ``.`` as separator computes exactly that signature, so the output is byte-identical to
Panoramax's for the same token id and secret, and its API accepts it.
"""

from __future__ import annotations

import hashlib
import json
from uuid import UUID

import psycopg
from itsdangerous import Signer
from itsdangerous.encoding import base64_encode

from ops.errors import ConfigError, TokenError

HEADER = {"typ": "JWT", "alg": "HS256"}
ISSUER = "geovisio"
MIN_SECRET_BYTES = 32
NO_SECRET = (
    "no secret key configured: set FLASK_SECRET_KEY (or SECRET_KEY) to the secret of your Panoramax API, "
    "or pass --secret-key"
)


def _compact(data: dict[str, str]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def validated_secret(secret: str | None) -> tuple[str, list[str]]:
    """The secret, refused when missing or empty, and warnings about it (a short secret is weak)."""
    if secret is None:
        raise ConfigError(NO_SECRET)
    if secret == "":
        raise ConfigError("the secret key is empty: set FLASK_SECRET_KEY (or SECRET_KEY) to a long random value")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return secret, [
            f"the secret key is shorter than {MIN_SECRET_BYTES} bytes: tokens signed with it are easier to forge"
        ]
    return secret, []


def encode(token_id: UUID, secret: str) -> str:
    """The JWT of a ``tokens`` row, exactly as Panoramax builds it."""
    validated_secret(secret)
    signing_input = (
        base64_encode(_compact(HEADER)) + b"." + base64_encode(_compact({"iss": ISSUER, "sub": str(token_id)}))
    )
    signer = Signer(secret, key_derivation="none", digest_method=hashlib.sha256, sep=".")
    return signer.sign(signing_input).decode("ascii")


def default_account_token_id(conn: psycopg.Connection) -> UUID:
    """The default account's oldest token (``generated_at``, then id): the same one every time."""
    account = conn.execute("SELECT id FROM accounts WHERE is_default").fetchone()
    if account is None:
        raise TokenError("there is no default account in the database (accounts.is_default)")
    row = conn.execute(
        "SELECT id FROM tokens WHERE account_id = %s ORDER BY generated_at, id LIMIT 1", (account[0],)
    ).fetchone()
    if row is None:
        raise TokenError("the default account has no token")
    token_id: UUID = row[0]
    return token_id
