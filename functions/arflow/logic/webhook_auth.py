"""arflow's own webhook signature, on canonical JSON, UBL XML and payments.

`X-Arflow-Timestamp` is Unix seconds; `X-Arflow-Signature` is `v1=<hex>`, the HMAC-SHA256 of
"<timestamp>." followed by the raw body, keyed with the webhook secret. Several `v1=` values,
comma-separated, let a sender sign with the old and the new secret while it is rotated.
"""

import hashlib
import hmac
from collections.abc import Mapping

from arflow.errors import WebhookAuthError

TIMESTAMP_HEADER = "X-Arflow-Timestamp"
SIGNATURE_HEADER = "X-Arflow-Signature"


def sign(raw: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The two headers that authenticate `raw` at `timestamp`."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"v1={_digest(raw, secret, str(timestamp))}",
    }


def verify(
    raw: bytes, headers: Mapping[str, str], secret: str, now: int, tolerance: int = 300
) -> None:
    """Raises WebhookAuthError, with the reason, unless `raw` is signed with `secret` and fresh."""
    if not secret:
        raise ValueError("no webhook secret is configured")
    by_name = {name.lower(): value for name, value in headers.items()}
    timestamp = by_name.get(TIMESTAMP_HEADER.lower(), "").strip()
    signature = by_name.get(SIGNATURE_HEADER.lower(), "").strip()

    if not timestamp:
        raise WebhookAuthError(f"the {TIMESTAMP_HEADER} header is missing")
    if not signature:
        raise WebhookAuthError(f"the {SIGNATURE_HEADER} header is missing")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise WebhookAuthError(f"the {TIMESTAMP_HEADER} header is not Unix seconds")
    candidates = _signatures(signature)

    expected = _digest(raw, secret, timestamp).encode()
    # Every candidate is compared, so the time taken does not say which one came close.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]
    if not any(matches):
        raise WebhookAuthError(f"the {SIGNATURE_HEADER} does not match the body")
    if abs(now - int(timestamp)) > tolerance:
        raise WebhookAuthError(f"the {TIMESTAMP_HEADER} is more than {tolerance} seconds from now")


def _signatures(header: str) -> list[str]:
    candidates = []
    for item in header.split(","):
        scheme, separator, value = item.strip().partition("=")
        if scheme != "v1" or not separator or not value.strip():
            raise WebhookAuthError(f"the {SIGNATURE_HEADER} header is not of the form v1=<hex>")
        candidates.append(value.strip())
    return candidates


def _digest(raw: bytes, secret: str, timestamp: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
