"""ShipStation V2 webhook signatures (RSA-SHA256), checked when a public key is configured.

https://docs.shipstation.com/apis/docs/guides/webhooks-validation: every V2 delivery carries
``x-shipengine-rsa-sha256-key-id``, ``x-shipengine-rsa-sha256-signature`` (base64) and
``x-shipengine-timestamp``; the signature is RSASSA-PKCS1-v1_5 with SHA-256 over
``<timestamp>.<raw body>``, made with the key the key id names; a timestamp more than about five
minutes from now is refused (a replay). ShipStation publishes its public keys as a JWKS.

shipnav never fetches keys while receiving (the receiver makes no outbound request): the operator
puts the key in ``SHIPNAV_WEBHOOK_PUBLIC_KEY``, as PEM text, a PEM file, or a JWKS file (every
``RSA`` key in it, by ``kid``). With a key configured, a V2 notification must be signed; without
one, signatures are not checked (the path token and the shared-secret header still are).
"""

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_ID_HEADER = "x-shipengine-rsa-sha256-key-id"
SIGNATURE_HEADER = "x-shipengine-rsa-sha256-signature"
TIMESTAMP_HEADER = "x-shipengine-timestamp"
TOLERANCE = timedelta(minutes=5)


class SignatureError(Exception):
    """A notification whose signature does not hold; ``status`` is the receiver's answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class PublicKeyError(ValueError):
    """SHIPNAV_WEBHOOK_PUBLIC_KEY cannot be read as a PEM public key or a JWKS."""


@dataclass(frozen=True)
class SignatureVerifier:
    keys: Mapping[str | None, rsa.RSAPublicKey]  # by kid; None: a PEM key, whatever the kid
    tolerance: timedelta = TOLERANCE

    @classmethod
    def from_setting(cls, value: str) -> "SignatureVerifier":
        """PEM text, or the path of a PEM or JWKS file."""
        text = value if "-----BEGIN" in value else _read(Path(value))
        stripped = text.strip()
        if stripped.startswith("{"):
            return cls(_jwks_keys(stripped))
        try:
            key = serialization.load_pem_public_key(stripped.encode())
        except ValueError as exc:
            raise PublicKeyError(f"SHIPNAV_WEBHOOK_PUBLIC_KEY is not a PEM public key ({exc})") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise PublicKeyError("SHIPNAV_WEBHOOK_PUBLIC_KEY is not an RSA public key")
        return cls({None: key})

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None) -> None:
        """Raise SignatureError unless ``body`` carries a valid, recent signature."""
        key_id = headers.get(KEY_ID_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        stamp = headers.get(TIMESTAMP_HEADER)
        if not (key_id and signature and stamp):
            raise SignatureError(401, "not signed: the x-shipengine-rsa-sha256-* headers are missing")
        signed_at = _instant(stamp)
        if signed_at is None:
            raise SignatureError(400, "the x-shipengine-timestamp header is not a time")
        if abs((now or datetime.now(UTC)) - signed_at) > self.tolerance:
            raise SignatureError(400, "the signature's timestamp is too far from now (a replay?)")
        key = self.keys.get(key_id) or self.keys.get(None)
        if key is None:
            raise SignatureError(401, "signed with a key that is not configured (unknown key id)")
        try:
            raw = base64.b64decode(signature, validate=True)
            key.verify(raw, stamp.encode() + b"." + body, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError(401, "the signature does not match the body") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise PublicKeyError(f"SHIPNAV_WEBHOOK_PUBLIC_KEY: cannot read {path} ({exc.strerror})") from None


def _b64url_int(value: object) -> int:
    if not isinstance(value, str):
        raise PublicKeyError("a JWKS key lacks n or e")
    padded = value + "=" * (-len(value) % 4)
    return int.from_bytes(base64.urlsafe_b64decode(padded), "big")


def _jwks_keys(text: str) -> dict[str | None, rsa.RSAPublicKey]:
    try:
        document = json.loads(text)
    except ValueError:
        raise PublicKeyError("SHIPNAV_WEBHOOK_PUBLIC_KEY is neither PEM nor JSON (a JWKS)") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    keys: dict[str | None, rsa.RSAPublicKey] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("kty") == "RSA":
            numbers = rsa.RSAPublicNumbers(_b64url_int(entry.get("e")), _b64url_int(entry.get("n")))
            keys[str(entry.get("kid"))] = numbers.public_key()
    if not keys:
        raise PublicKeyError("SHIPNAV_WEBHOOK_PUBLIC_KEY: the JWKS holds no RSA key")
    return keys


def _instant(text: str) -> datetime | None:
    """ISO-8601 (what ShipStation sends), or seconds / milliseconds since the epoch."""
    value = text.strip()
    try:
        if value.isdigit():
            number = int(value)
            return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
