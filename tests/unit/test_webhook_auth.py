"""arflow's own webhook signature: X-Arflow-Timestamp and X-Arflow-Signature."""

import hashlib
import hmac

import pytest

from arflow.logic.documents import WebhookAuthError
from arflow.logic.webhook_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

SECRET = "arflow-webhook-secret-7d41"
NOW = 1_709_294_400
BODY = b'{"payment_id":"pay-881","amount":"1190.10","currency":"EUR"}'


def test_signed_body_is_accepted() -> None:
    # Given a body signed now
    headers = sign(BODY, SECRET, NOW)

    # When it is verified within the tolerance
    # Then nothing is raised
    verify(BODY, headers, SECRET, now=NOW + 300)


def test_signature_is_the_documented_hmac() -> None:
    # Given a body signed at a known time
    headers = sign(BODY, SECRET, NOW)

    # When the headers are read
    # Then they are the timestamp and the HMAC-SHA256 of "<timestamp>.<body>"
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"v1={expected}"}


def test_header_names_are_matched_in_any_case() -> None:
    # Given headers as API Gateway passes them on, in lower case
    headers = {name.lower(): value for name, value in sign(BODY, SECRET, NOW).items()}

    # When they are verified
    # Then they are found and accepted
    verify(BODY, headers, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("body", "secret", "now", "reason"),
    [
        (BODY.replace(b"1190.10", b"1.10"), SECRET, NOW, "does not match the body"),
        (BODY, "someone-elses-secret", NOW, "does not match the body"),
        (BODY, SECRET, NOW + 301, "more than 300 seconds from now"),
        (BODY, SECRET, NOW - 301, "more than 300 seconds from now"),
    ],
    ids=["tampered body", "wrong secret", "stale", "from the future"],
)
def test_bad_or_stale_signature_is_refused(body: bytes, secret: str, now: int, reason: str) -> None:
    # Given headers signed over BODY with SECRET at NOW
    headers = sign(BODY, SECRET, NOW)

    # When a different body, secret or time is checked against them
    with pytest.raises(WebhookAuthError) as error:
        verify(body, headers, secret, now=now)

    # Then it is refused with the reason
    assert reason in str(error.value)


def test_moved_timestamp_breaks_the_signature() -> None:
    # Given a captured request whose timestamp is moved forward to look fresh
    headers = sign(BODY, SECRET, NOW)
    headers[TIMESTAMP_HEADER] = str(NOW + 3600)

    # When it is replayed an hour later
    with pytest.raises(WebhookAuthError) as error:
        verify(BODY, headers, SECRET, now=NOW + 3600)

    # Then the signature does not match
    assert "does not match the body" in str(error.value)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "X-Arflow-Timestamp header is missing"),
        ({TIMESTAMP_HEADER: str(NOW)}, "X-Arflow-Signature header is missing"),
        ({TIMESTAMP_HEADER: "now", SIGNATURE_HEADER: "v1=00"}, "is not Unix seconds"),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "sha256=00"}, "not of the form v1=<hex>"),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "v1="}, "not of the form v1=<hex>"),
    ],
    ids=["no timestamp", "no signature", "timestamp in words", "other scheme", "empty v1"],
)
def test_missing_or_malformed_headers_are_refused(headers: dict[str, str], reason: str) -> None:
    # Given headers that are absent or not of the documented form
    # When they are verified
    with pytest.raises(WebhookAuthError) as error:
        verify(BODY, headers, SECRET, now=NOW)

    # Then the reason says which header and what is wrong
    assert reason in str(error.value)


def test_either_of_two_signatures_may_match_while_the_secret_is_rotated() -> None:
    # Given a body signed with the old secret and with the new one
    old = sign(BODY, "the-old-secret", NOW)[SIGNATURE_HEADER]
    new = sign(BODY, SECRET, NOW)[SIGNATURE_HEADER]
    headers = {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"{old}, {new}"}

    # When it is verified with the new secret
    # Then it is accepted
    verify(BODY, headers, SECRET, now=NOW)


def test_an_unset_secret_is_a_configuration_fault_not_a_pass() -> None:
    # Given a deployment with no secret, and a body signed with the empty key
    headers = sign(BODY, "", NOW)

    # When it is verified
    # Then it is a fault, not an accepted webhook
    with pytest.raises(ValueError, match="no webhook secret"):
        verify(BODY, headers, "", now=NOW)
