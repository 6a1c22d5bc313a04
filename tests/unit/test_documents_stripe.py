"""Stripe webhooks: the signature scheme, the events that carry documents, and the rest."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arflow.logic.documents import (
    InvalidDocumentError,
    MalformedDocumentError,
    UnsupportedDocumentError,
    WebhookAuthError,
    parse_stripe_event,
    sign_stripe_payload,
    verify_stripe_signature,
    wrap_stripe_object,
)
from arflow.models.invoice import DocumentSource, DocumentType, document_id

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples" / "stripe"
EVENTS = REPO / "tests" / "events"

SECRET = "whsec_test_5f1c0d8e2a"
NOW = 1_709_294_400
BODY = b'{"id":"evt_1","object":"event","type":"invoice.finalized"}'


def sample(name: str) -> dict[str, Any]:
    if not SAMPLES.is_dir():
        pytest.skip(f"the shared Stripe samples are not at {SAMPLES}")
    body: dict[str, Any] = json.loads((SAMPLES / name).read_text("utf-8"))
    return body


def as_event(obj: dict[str, Any], **changes: Any) -> bytes:
    """The object, with changes, in the envelope Stripe would send it in."""
    return json.dumps(wrap_stripe_object({**obj, **changes}, created=NOW)).encode()


def own_event(**changes: Any) -> bytes:
    """The invoice.finalized event written for these tests, with changes to its invoice."""
    body = json.loads((EVENTS / "stripe_invoice_finalized.json").read_text("utf-8"))
    body["data"]["object"].update(changes)
    return json.dumps(body).encode()


def problems(error: pytest.ExceptionInfo[InvalidDocumentError]) -> dict[str, str]:
    return {problem.field: problem.message for problem in error.value.problems}


# Signatures


def test_signature_made_with_the_secret_is_accepted() -> None:
    # Given a body signed as Stripe signs it
    header = sign_stripe_payload(BODY, SECRET, NOW)

    # When it is verified a minute later
    # Then nothing is raised
    verify_stripe_signature(BODY, header, SECRET, now=NOW + 60)


def test_signature_header_has_stripes_shape() -> None:
    # Given a signed body
    header = sign_stripe_payload(BODY, SECRET, NOW)

    # When the header is read
    timestamp, signature = header.split(",")

    # Then it is t=<unix>,v1=<64 hex digits>
    assert timestamp == f"t={NOW}"
    assert signature.startswith("v1=")
    assert len(signature.removeprefix("v1=")) == 64
    int(signature.removeprefix("v1="), 16)


@pytest.mark.parametrize(
    ("body", "secret", "now", "reason"),
    [
        (BODY.replace(b"evt_1", b"evt_2"), SECRET, NOW, "no v1 signature"),
        (BODY, "whsec_someone_else", NOW, "no v1 signature"),
        (BODY, SECRET, NOW + 301, "more than 300 seconds from now"),
        (BODY, SECRET, NOW - 301, "more than 300 seconds from now"),
    ],
    ids=["tampered body", "wrong secret", "stale", "from the future"],
)
def test_bad_or_stale_signature_is_refused(body: bytes, secret: str, now: int, reason: str) -> None:
    # Given a header signed over BODY with SECRET at NOW
    header = sign_stripe_payload(BODY, SECRET, NOW)

    # When a different body, secret or time is checked against it
    with pytest.raises(WebhookAuthError) as error:
        verify_stripe_signature(body, header, secret, now=now)

    # Then it is refused with the reason
    assert reason in str(error.value)


def test_replayed_timestamp_does_not_carry_the_signature() -> None:
    # Given a valid signature whose timestamp is moved forward to dodge the staleness check
    header = sign_stripe_payload(BODY, SECRET, NOW)
    replayed = header.replace(f"t={NOW}", f"t={NOW + 3600}")

    # When it is verified an hour later
    with pytest.raises(WebhookAuthError) as error:
        verify_stripe_signature(BODY, replayed, SECRET, now=NOW + 3600)

    # Then the signature no longer matches
    assert "no v1 signature" in str(error.value)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "header is missing"),
        ("", "header is missing"),
        ("v1=abc", "no valid timestamp"),
        ("t=soon,v1=abc", "no valid timestamp"),
        (f"t={NOW},v0=abc", "no v1 signature"),
        ("garbage", "no valid timestamp"),
    ],
)
def test_missing_or_malformed_header_is_refused(header: str | None, reason: str) -> None:
    # Given a header that is absent or not Stripe's shape
    # When it is verified
    with pytest.raises(WebhookAuthError) as error:
        verify_stripe_signature(BODY, header, SECRET, now=NOW)

    # Then the reason says what is wrong with it
    assert reason in str(error.value)
    assert error.value.http_status == 401


def test_any_one_of_several_v1_signatures_may_match() -> None:
    # Given a header with a signature from a rolled secret and one from the current secret
    current = sign_stripe_payload(BODY, SECRET, NOW).split(",")[1]
    rolled = sign_stripe_payload(BODY, "whsec_rolled", NOW).split(",")[1]
    header = f"t={NOW},{rolled},{current},v0=ignored"

    # When it is verified
    # Then it is accepted
    verify_stripe_signature(BODY, header, SECRET, now=NOW)


def test_several_v1_signatures_none_matching_is_refused() -> None:
    # Given a header with two signatures, neither from this secret
    first = sign_stripe_payload(BODY, "whsec_a", NOW).split(",")[1]
    second = sign_stripe_payload(BODY, "whsec_b", NOW).split(",")[1]

    # When it is verified
    with pytest.raises(WebhookAuthError):
        verify_stripe_signature(BODY, f"t={NOW},{first},{second}", SECRET, now=NOW)


def test_an_unset_secret_is_a_configuration_fault_not_a_pass() -> None:
    # Given no secret
    header = sign_stripe_payload(BODY, "", NOW)

    # When a body signed with the empty key is verified
    # Then it is a fault of the deployment, not an accepted webhook
    with pytest.raises(ValueError, match="no Stripe endpoint secret"):
        verify_stripe_signature(BODY, header, "", now=NOW)


# Events with documents


def test_fixture_invoice_as_finalized_event_is_ten_dollars_without_email() -> None:
    # Given Stripe's fixture invoice, delivered as invoice.finalized
    raw = as_event(sample("invoice.json"))

    # When the event is parsed
    event = parse_stripe_event(raw)

    # Then it carries a USD 10.00 invoice for a customer with no e-mail
    assert event.handled
    assert event.event_type == "invoice.finalized"
    document = event.document
    assert document is not None
    assert document.source is DocumentSource.STRIPE
    assert document.currency == "USD"
    assert document.total_amount == Decimal("10.00")
    assert str(document.total_amount) == "10.00"
    assert document.customer.email is None
    assert document.invoice_number == "in_1Pgc6tB7WZ01zgkWu9fdqL6I"
    assert document.source_id == "in_1Pgc6tB7WZ01zgkWu9fdqL6I"
    assert document.customer.id == "cus_QXg1o8vcGmoR32"
    assert document.customer.name == "cus_QXg1o8vcGmoR32"
    assert document.supplier.id == "stripe:default"
    assert document.supplier.country == "US"
    assert document.issue_date == date(2009, 2, 13)
    assert document.due_date == date(2009, 2, 13)
    assert document.payment_terms == "Charged automatically by Stripe"
    assert [line.amount for line in document.lines] == [Decimal("10.00")]


def test_finalized_invoice_maps_every_field_it_has() -> None:
    # Given a finalized invoice in a zero-decimal currency, from a connected account
    raw = own_event()

    # When the event is parsed
    event = parse_stripe_event(raw)

    # Then numbers, parties, dates and yen are what Stripe shows
    assert event.account == "acct_1NxHpQLkdIwHu7ix"
    document = event.document
    assert document is not None
    assert document.invoice_number == "HA-2024-0317"
    assert document.source_id == "in_1OtY2mLkdIwHu7ixQ6sXf2Ab"
    assert document.supplier.id == "stripe:acct_1NxHpQLkdIwHu7ix"
    assert document.supplier.name == "Harbour Analytics Ltd"
    assert document.supplier.country == "IE"
    assert document.customer.name == "Kansai Logistics K.K."
    assert document.customer.email == "billing@kansai-logistics.example"
    assert document.customer.country == "JP"
    assert document.currency == "JPY"
    assert document.total_amount == Decimal("249900")
    assert document.tax_amount == Decimal("22718")
    assert document.issue_date == date(2024, 3, 1)
    assert document.due_date == date(2024, 3, 15)
    assert document.payment_terms == "Payment within 14 days"
    assert document.payment_terms_days == 14
    assert document.payment_instructions is not None
    assert document.payment_instructions.payment_url == (
        "https://invoice.stripe.com/i/acct_1NxHpQLkdIwHu7ix/test_YWNjdF8x"
    )
    assert [(line.description, line.amount) for line in document.lines] == [
        ("Analytics seat licence, March", Decimal("227182")),
        ("il_1OtY2mLkdIwHu7ixa2", Decimal("22718")),
    ]


def test_partly_paid_invoice_asks_for_what_remains() -> None:
    # Given an invoice of which part is already paid
    raw = own_event(amount_paid=49900, amount_remaining=200000)

    # When the event is parsed
    event = parse_stripe_event(raw)

    # Then the amount to collect is what remains
    assert event.document is not None
    assert event.document.total_amount == Decimal("200000")


def test_invoice_with_nothing_to_collect_is_not_handled() -> None:
    # Given a finalized invoice already settled, e.g. from the customer's credit balance
    raw = own_event(amount_paid=249900, amount_remaining=0)

    # When the event is parsed
    event = parse_stripe_event(raw)

    # Then it is acknowledged as nothing to collect, not refused
    assert not event.handled
    assert event.unhandled_reason == "in_1OtY2mLkdIwHu7ixQ6sXf2Ab has nothing to collect"


def test_fixture_credit_note_applies_to_its_invoice() -> None:
    # Given Stripe's fixture credit note, delivered as credit_note.created
    raw = as_event(sample("credit_note.json"))

    # When the event is parsed
    event = parse_stripe_event(raw)

    # Then it is a USD 16.90 credit note against the Stripe invoice it names
    document = event.document
    assert document is not None
    assert document.document_type is DocumentType.CREDIT_NOTE
    assert document.invoice_number == "ABCD-1234-CN-01"
    assert document.billing_reference == "in_1Pgc75B7WZ01zgkWYv4iMwt7"
    assert document.total_amount == Decimal("16.90")
    assert document.customer.id == "cus_QXg1o8vcGmoR32"
    assert [line.amount for line in document.lines] == [Decimal("11.90"), Decimal("5.00")]


# Events without documents, and bodies that are not events


def test_plan_created_event_is_reported_unhandled() -> None:
    # Given Stripe's fixture event, a plan.created
    raw = json.dumps(sample("event.json")).encode()

    # When it is parsed
    event = parse_stripe_event(raw)

    # Then it is not handled, and the reason says which events are
    assert not event.handled
    assert event.document is None
    assert event.event_id == "evt_1Pgc76B7WZ01zgkWwyRHS12y"
    assert event.object_type == "plan"
    assert event.unhandled_reason == (
        "plan.created events are not handled; arflow takes credit_note.created and "
        "invoice.finalized"
    )


@pytest.mark.parametrize(
    "name",
    [
        "invoice.json",
        "credit_note.json",
        "customer.json",
        "charge.json",
        "invoice_payment.json",
        "payment_intent.json",
    ],
)
def test_bare_stripe_object_is_unsupported(name: str) -> None:
    # Given a Stripe object posted as it is, without an event around it
    obj = sample(name)

    # When it is parsed as a webhook
    with pytest.raises(UnsupportedDocumentError) as error:
        parse_stripe_event(json.dumps(obj).encode())

    # Then the sender is told Stripe webhooks deliver events
    assert f"a bare Stripe {obj['object']} object" in error.value.message
    assert "Stripe webhooks deliver events" in error.value.message


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("charge.json", "charge.succeeded"),
        ("customer.json", "customer.created"),
        ("payment_intent.json", "payment_intent.succeeded"),
    ],
)
def test_other_wrapped_fixtures_are_unhandled_events(name: str, event_type: str) -> None:
    # Given a fixture delivered in the event Stripe would send for it
    raw = as_event(sample(name))

    # When it is parsed
    event = parse_stripe_event(raw)

    # Then it is an event of that type that arflow does not act on
    assert event.event_type == event_type
    assert not event.handled
    assert event.unhandled_reason is not None
    assert event.unhandled_reason.startswith(f"{event_type} events are not handled")


def test_the_invoice_payment_fixture_is_refused_field_by_field() -> None:
    # Given the invoice_payment fixture, whose invoice, amount and currency are placeholders
    raw = as_event(sample("invoice_payment.json"))

    # When it is parsed as the invoice_payment.paid event Stripe would send
    with pytest.raises(InvalidDocumentError) as error:
        parse_stripe_event(raw)

    # Then each placeholder is named, and no payment is made of it
    fields = [problem.field for problem in error.value.problems]
    assert fields == ["data.object.invoice", "data.object.amount_paid", "data.object.currency"]


def test_invoice_paid_is_a_payment_of_the_invoice_by_its_stripe_id() -> None:
    # Given an invoice.paid event for a USD 10.00 invoice paid through a payment intent
    invoice = sample("invoice.json") | {"amount_paid": 1000, "payment_intent": "pi_123"}
    event = wrap_stripe_object(invoice, 1234567890)
    event["type"] = "invoice.paid"

    # When it is parsed
    parsed = parse_stripe_event(json.dumps(event).encode())

    # Then it is a payment of USD 10.00 against the invoice Stripe names, keyed by the intent
    assert parsed.payment is not None
    assert parsed.payment.amount == Decimal("10.00")
    assert parsed.payment.currency == "USD"
    assert parsed.payment.payment_id == "stripe:pi_123"
    assert parsed.payment.invoice_id == document_id("stripe:default", invoice["id"])


def test_malformed_body_is_malformed() -> None:
    # Given a body cut short
    # When it is parsed
    with pytest.raises(MalformedDocumentError):
        parse_stripe_event(b'{"object": "event", "type": ')


def test_event_without_type_or_object_is_invalid() -> None:
    # Given an event envelope missing its type and its object
    raw = json.dumps({"id": "evt_1", "object": "event", "created": NOW, "data": {}}).encode()

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_stripe_event(raw)

    # Then both are named
    assert problems(error) == {"type": "is required", "data.object": "must be a Stripe object"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"currency": "xyz"}, "data.object.currency", "unknown currency code 'xyz'"),
        ({"amount_remaining": 10.5}, "data.object.amount_remaining", "must be a whole number"),
        ({"customer_email": "not-an-address"}, "data.object.customer_email", "not a valid e-mail"),
        ({"customer": None}, "data.object.customer", "is required"),
        (
            {"lines": {"data": [{"amount": "12.00"}]}},
            "data.object.lines.data.0.amount",
            "must be a whole number",
        ),
        ({"due_date": 1709200000}, "data.object.due_date", "before the issue date"),
        ({"effective_at": "yesterday"}, "data.object.effective_at", "must be Unix seconds"),
    ],
)
def test_invoice_with_wrong_fields_names_the_stripe_attribute(
    changes: dict[str, Any], field: str, message: str
) -> None:
    # Given a finalized invoice with one attribute wrong
    raw = own_event(**changes)

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_stripe_event(raw)

    # Then the Stripe attribute is named with what is wrong
    assert field in problems(error)
    assert message in problems(error)[field]


def test_event_type_that_does_not_match_its_object_is_invalid() -> None:
    # Given an invoice.finalized event that carries a plan
    body = sample("event.json")
    body["type"] = "invoice.finalized"

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_stripe_event(json.dumps(body).encode())

    # Then the mismatch is named
    assert problems(error) == {
        "data.object.object": "invoice.finalized carries invoice objects, not plan"
    }


# Wrapping bare objects as Stripe would send them


def test_wrapped_object_is_a_complete_deterministic_envelope() -> None:
    # Given a bare invoice
    invoice = {"id": "in_1", "object": "invoice", "livemode": False}

    # When it is wrapped twice, and once for a connected account
    first = wrap_stripe_object(invoice, created=NOW)
    second = wrap_stripe_object(invoice, created=NOW)
    connected = wrap_stripe_object(invoice, created=NOW, account="acct_9")

    # Then the envelope has Stripe's fields, the same id each time, and the account when given
    assert first == second
    assert first["object"] == "event"
    assert first["type"] == "invoice.finalized"
    assert first["created"] == NOW
    assert first["data"] == {"object": invoice}
    assert first["id"].startswith("evt_")
    assert "account" not in first
    assert connected["account"] == "acct_9"
    assert connected["id"] != first["id"]


def test_event_is_not_wrapped_again() -> None:
    # Given something that is already an event
    event = {"id": "evt_1", "object": "event", "type": "plan.created", "data": {"object": {}}}

    # When it is wrapped
    # Then it comes back as it is
    assert wrap_stripe_object(event, created=NOW) is event


def test_object_without_a_known_event_cannot_be_wrapped() -> None:
    # Given a Stripe object for which no event is known
    # When it is wrapped
    with pytest.raises(UnsupportedDocumentError, match="no Stripe event is known for a plan"):
        wrap_stripe_object({"id": "plan_1", "object": "plan"}, created=NOW)
