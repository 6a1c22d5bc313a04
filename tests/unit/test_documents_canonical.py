"""Canonical JSON invoices, and how `POST /invoices` picks a parser by content type."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from arflow.logic.documents import (
    InvalidDocumentError,
    MalformedDocumentError,
    UnsupportedDocumentError,
    parse_canonical,
    parse_document,
)
from arflow.models.invoice import DocumentSource, DocumentType

EVENTS = Path(__file__).resolve().parents[1] / "events"


def event(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def edited(name: str, **changes: object) -> bytes:
    body = json.loads(event(name))
    body.update(changes)
    return json.dumps(body).encode()


def with_total(amount: bytes) -> bytes:
    """The example invoice with the amount written into the JSON text as given."""
    raw = event("canonical_invoice.json")
    assert b'"total_amount": 1190.10' in raw
    return raw.replace(b'"total_amount": 1190.10', b'"total_amount": ' + amount)


def problems(error: pytest.ExceptionInfo[InvalidDocumentError]) -> dict[str, str]:
    return {problem.field: problem.message for problem in error.value.problems}


def test_canonical_invoice_keeps_every_field_and_exact_amounts() -> None:
    # Given the canonical example invoice
    raw = event("canonical_invoice.json")

    # When it is parsed
    document = parse_canonical(raw)

    # Then what the customer will be asked to pay is exactly what was sent
    assert document.invoice_number == "INV-2024-0042"
    assert document.source is DocumentSource.CANONICAL
    assert document.document_type is DocumentType.INVOICE
    assert document.total_amount == Decimal("1190.10")
    assert str(document.total_amount) == "1190.10"
    assert document.tax_amount == Decimal("190.02")
    assert document.issue_date == date(2024, 3, 1)
    assert document.due_date == date(2024, 3, 31)
    assert document.payment_terms_days == 30
    assert document.customer.email == "ap@nordlicht.example"
    assert document.supplier.vat_id == "DE123456789"
    assert document.payment_instructions is not None
    assert document.payment_instructions.iban == "DE89370400440532013000"
    assert [line.amount for line in document.lines] == [Decimal("800.04"), Decimal("200.04")]
    assert document.lines[1].quantity == Decimal("1.5")


def test_amounts_that_floats_would_round_stay_exact() -> None:
    # Given an amount that has no exact binary floating-point form
    raw = with_total(b"9007199254740993.07")

    # When it is parsed
    document = parse_canonical(raw)

    # Then not a cent is lost
    assert document.total_amount == Decimal("9007199254740993.07")


def test_unknown_currency_is_named() -> None:
    # Given an invoice in currency "XYZ"
    raw = event("canonical_invoice_unknown_currency.json")

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_canonical(raw)

    # Then the sender is told which field and why
    assert problems(error) == {"currency": "unknown currency code 'XYZ'"}
    assert error.value.to_dict() == {
        "error": "invalid_document",
        "message": "the document is not valid: currency",
        "problems": [{"field": "currency", "message": "unknown currency code 'XYZ'"}],
    }


def test_zero_amount_invoice_is_refused() -> None:
    # Given an invoice for nothing
    raw = event("canonical_invoice_zero_amount.json")

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_canonical(raw)

    # Then the amount is what is wrong
    assert list(problems(error)) == ["total_amount"]
    assert "must have a positive amount payable" in problems(error)["total_amount"]


def test_due_date_before_issue_date_is_refused() -> None:
    # Given an invoice due two weeks before it was issued
    raw = event("canonical_invoice_due_before_issue.json")

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_canonical(raw)

    # Then the due date is what is wrong
    assert problems(error) == {"due_date": "the due date is before the issue date"}


def test_every_wrong_field_is_reported_in_words() -> None:
    # Given an invoice with a missing name, a bad e-mail and country, no real date or amount,
    # and a field the model does not have
    raw = event("canonical_invoice_bad_fields.json")

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_canonical(raw)

    # Then each field is named with what is wrong with it
    assert problems(error) == {
        "customer.name": "is required",
        "customer.email": "is not a valid e-mail address",
        "customer.country": "must be an ISO 3166-1 alpha-2 country code in capitals, e.g. SE",
        "issue_date": "is not a date (expected YYYY-MM-DD)",
        "total_amount": "is not a number",
        "discount_code": "is not a known field",
    }


def test_amount_beyond_decimal_precision_is_a_field_problem() -> None:
    # Given an amount too large to round to cents
    raw = with_total(b"1e30")

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_canonical(raw)

    # Then it is refused as a field problem, not a crash
    assert problems(error) == {"total_amount": "the amount is too large"}


def test_credit_note_with_negative_amount_is_refused() -> None:
    # Given a credit note whose amount is negative
    raw = edited("canonical_invoice.json", document_type="credit_note", total_amount=-10)

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_canonical(raw)

    # Then the sender is told a credit note's amount is positive
    assert "must not be negative" in problems(error)["total_amount"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"invoice_number": "INV-1",', "not valid JSON"),
        (b'{"invoice_number": "INV-1", "total_amount": NaN}', "NaN is not a number JSON allows"),
        (b'{"total_amount": 1, "total_amount": 1000}', "'total_amount' appears twice"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_json_is_refused(raw: bytes, reason: str) -> None:
    # Given a body that is not JSON the product will read
    # When it is parsed
    with pytest.raises(MalformedDocumentError) as error:
        parse_canonical(raw)

    # Then the reason is given, under the malformed kind
    assert reason in error.value.message
    assert error.value.to_dict()["error"] == "malformed_document"


def test_json_that_is_not_an_object_is_refused() -> None:
    # Given a JSON list
    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_canonical(b"[1, 2]")

    # Then the document as a whole is what is wrong
    assert problems(error) == {"document": "must be a JSON object"}


def test_stripe_object_posted_as_canonical_is_unsupported() -> None:
    # Given a Stripe event posted to the canonical endpoint
    raw = json.dumps({"object": "event", "type": "invoice.finalized", "id": "evt_1"}).encode()

    # When it is parsed
    with pytest.raises(UnsupportedDocumentError) as error:
        parse_canonical(raw)

    # Then the sender is pointed at the Stripe webhook
    assert "Stripe event object" in error.value.message
    assert "Stripe webhook" in error.value.message


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", None, ""],
)
def test_json_content_types_and_sniffed_bodies_go_to_the_canonical_parser(
    content_type: str | None,
) -> None:
    # Given the canonical invoice, announced as JSON or not announced at all
    raw = b"\n  " + event("canonical_invoice.json")

    # When it is posted
    document = parse_document(raw, content_type)

    # Then it is read as canonical JSON
    assert document.source is DocumentSource.CANONICAL
    assert document.invoice_number == "INV-2024-0042"


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "text/xml; charset=UTF-8", "application/vnd.peppol.bis+xml", None],
)
def test_xml_content_types_and_sniffed_bodies_go_to_the_ubl_parser(
    content_type: str | None,
) -> None:
    # Given a UBL document, announced as XML or not announced at all
    raw = event("ubl_order.xml")

    # When it is posted
    with pytest.raises(UnsupportedDocumentError) as error:
        parse_document(raw, content_type)

    # Then the UBL parser is the one that answers
    assert error.value.message == "a UBL Order is not an invoice or credit note"


def test_xml_sent_as_json_is_malformed_with_a_hint() -> None:
    # Given an XML body announced as JSON
    raw = event("ubl_order.xml")

    # When it is posted
    with pytest.raises(MalformedDocumentError) as error:
        parse_document(raw, "application/json")

    # Then the sender learns the body looks like XML
    assert "looks like XML" in error.value.message


@pytest.mark.parametrize(
    ("raw", "content_type", "reason"),
    [
        (b"%PDF-1.7", "application/pdf", "content type application/pdf is not accepted"),
        (b"hello", None, "neither a JSON object nor an XML document"),
        (b"", "text/plain", "neither a JSON object nor an XML document"),
    ],
)
def test_other_bodies_are_malformed(raw: bytes, content_type: str | None, reason: str) -> None:
    # Given a body that is neither JSON nor XML
    # When it is posted
    with pytest.raises(MalformedDocumentError) as error:
        parse_document(raw, content_type)

    # Then it is refused with the reason
    assert reason in error.value.message
