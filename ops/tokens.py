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
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from itsdangerous import BadData, Signer
from itsdangerous.encoding import base64_decode, base64_encode

from ops import queries
from ops.errors import ConfigError, TokenError, TokenInvalid

HEADER = {"typ": "JWT", "alg": "HS256"}
ISSUER = "geovisio"
MIN_SECRET_BYTES = 32
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")  # unpadded base64url, as JWS compact serialisation writes it
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
    account = conn.execute(queries.statement("tokens", "default_account")).fetchone()
    if account is None:
        raise TokenError("there is no default account in the database (accounts.is_default)")
    row = conn.execute(queries.statement("tokens", "oldest_token"), {"account_id": account[0]}).fetchone()
    if row is None:
        raise TokenError("the default account has no token")
    token_id: UUID = row[0]
    return token_id


@dataclass(frozen=True)
class TokenInfo:
    """A verified token: its row, and the account it belongs to."""

    token_id: UUID
    account_id: UUID
    account_name: str

    def as_dict(self) -> dict[str, str]:
        return {"token_id": str(self.token_id), "account_id": str(self.account_id), "account": self.account_name}


def _segment(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(base64_decode(text))
    except (ValueError, BadData):
        raise TokenInvalid(f"the token's {what} is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise TokenInvalid(f"the token's {what} is not a JSON object")
    return value


def verify(conn: psycopg.Connection, token: str, secret: str) -> TokenInfo:
    """Check a token as Panoramax's API does: HS256 only, its signature with ``secret``, its ``tokens`` row,
    the account that claimed it. Raises TokenInvalid saying why."""
    validated_secret(secret)
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenInvalid("not a JWT: expected header.payload.signature")
    if not all(BASE64URL.fullmatch(part) for part in parts):
        raise TokenInvalid("not a JWT: a part holds a character outside base64url (A-Z a-z 0-9 - _)")
    header = _segment(parts[0], "header")
    if header.get("alg") != HEADER["alg"]:
        raise TokenInvalid(f"algorithm {header.get('alg')!r} refused: only HS256 tokens are valid")
    signer = Signer(secret, key_derivation="none", digest_method=hashlib.sha256, sep=".")
    if not signer.verify_signature(f"{parts[0]}.{parts[1]}".encode(), parts[2].encode()):
        raise TokenInvalid("the signature does not match: signed with another key, or altered")
    claims = _segment(parts[1], "payload")
    try:
        token_id = UUID(str(claims.get("sub")))
    except ValueError:
        raise TokenInvalid("the token names no token id (sub)") from None
    row = conn.execute(queries.statement("tokens", "token_account"), {"id": token_id}).fetchone()
    if row is None:
        raise TokenInvalid(f"token {token_id} does not exist any more (revoked)")
    if row[0] is None:
        raise TokenInvalid(f"token {token_id} is not claimed yet: it cannot be used")
    return TokenInfo(token_id, row[0], row[1])
