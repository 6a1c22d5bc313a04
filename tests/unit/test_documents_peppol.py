"""Peppol BIS Billing 3.0 documents: the published examples, edited copies of them, and attacks."""

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import pytest

from arflow.logic.documents import (
    InvalidDocumentError,
    MalformedDocumentError,
    UnsupportedDocumentError,
    parse_ubl,
)
from arflow.logic.documents.peppol import days_from_terms
from arflow.models.invoice import DocumentSource, DocumentType

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples" / "peppol"
EVENTS = REPO / "tests" / "events"

CUSTOMER_EMAIL = "cac:AccountingCustomerParty/cac:Party/cac:Contact/cbc:ElectronicMail"
PAYABLE = "cac:LegalMonetaryTotal/cbc:PayableAmount"


def sample(name: str) -> bytes:
    if not SAMPLES.is_dir():
        pytest.skip(f"the shared Peppol samples are not at {SAMPLES}")
    return (SAMPLES / name).read_bytes()


def edited(name: str, old: str, new: str) -> bytes:
    """A sample with one piece of text changed, in memory; the file is left as it is."""
    raw = sample(name)
    assert old.encode() in raw, f"{old!r} is not in {name}"
    return raw.replace(old.encode(), new.encode(), 1)


def problems(error: pytest.ExceptionInfo[InvalidDocumentError]) -> dict[str, str]:
    return {problem.field: problem.message for problem in error.value.problems}


class Seen(NamedTuple):
    """What a collector sees of a document."""

    kind: str
    number: str
    total: str
    due: date | None = None
    terms_days: int | None = None
    email: str | None = None
    currency: str = "EUR"


DUE = date(2017, 12, 1)
BUYER = "lj@buyer.se"
EXAMPLES = {
    "base-example.xml": Seen("invoice", "Snippet1", "1656.25", DUE, email=BUYER),
    "Allowance-example.xml": Seen("invoice", "Snippet1", "6125.00", DUE, email=BUYER),
    "Vat-category-S.xml": Seen("invoice", "Snippet1", "8550.00", DUE),
    "sales-order-example.xml": Seen("invoice", "Snippet1", "1656.25", DUE, email=BUYER),
    "base-creditnote-correction.xml": Seen("credit_note", "Snippet1", "1656.25", email=BUYER),
    "base-negative-inv-correction.xml": Seen(
        "invoice", "Correction1", "-1656.25", DUE, email=BUYER
    ),
    "vat-category-E.xml": Seen("invoice", "Vat-Z", "1200.00", terms_days=30, currency="GBP"),
    "vat-category-O.xml": Seen("invoice", "Vat-O", "3200.00", terms_days=30, currency="SEK"),
    "vat-category-Z.xml": Seen("invoice", "Vat-Z", "1200.00", terms_days=30, currency="GBP"),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_published_example_is_read(name: str) -> None:
    # Given a Peppol example as published
    raw = sample(name)
    seen = EXAMPLES[name]

    # When it is parsed
    document = parse_ubl(raw)

    # Then the collector sees its number, amount, due date or terms, and the buyer's e-mail
    assert document.source is DocumentSource.PEPPOL
    assert document.document_type == seen.kind
    assert document.invoice_number == seen.number
    assert document.currency == seen.currency
    assert document.total_amount == Decimal(seen.total)
    assert str(document.total_amount) == seen.total
    assert document.due_date == seen.due
    assert document.payment_terms_days == seen.terms_days
    assert document.customer.email == seen.email


def test_every_sample_in_the_folder_is_covered() -> None:
    # Given the Peppol samples folder
    sample("base-example.xml")

    # When its files are listed
    names = {path.name for path in SAMPLES.glob("*.xml")}

    # Then each has its expectation above
    assert names == set(EXAMPLES)


def test_base_example_maps_parties_payment_and_lines() -> None:
    # Given the base example
    raw = sample("base-example.xml")

    # When it is parsed
    document = parse_ubl(raw)

    # Then parties are keyed by their Peppol endpoint and payment details are kept
    assert document.supplier.id == "0088:9482348239847239874"
    assert document.supplier.name == "SupplierTradingName Ltd."
    assert document.supplier.country == "GB"
    assert document.supplier.vat_id == "GB1232434"
    assert document.customer.id == "0002:FR23342"
    assert document.customer.name == "BuyerTradingName AS"
    assert document.customer.country == "SE"
    assert document.issue_date == date(2017, 11, 13)
    assert document.tax_amount == Decimal("331.25")
    assert document.payment_terms == "Payment within 10 days, 2% discount"
    assert document.payment_instructions is not None
    assert document.payment_instructions.iban == "IBAN32423940"
    assert document.payment_instructions.bic == "BIC324098"
    assert document.payment_instructions.account_name == "AccountName"
    assert document.payment_instructions.payment_reference == "Snippet1"
    assert [(line.description, line.quantity, line.amount) for line in document.lines] == [
        ("item name", Decimal("7"), Decimal("2800")),
        ("item name 2", Decimal("-3"), Decimal("-1500")),
    ]


def test_tax_is_taken_in_the_document_currency_not_the_tax_currency() -> None:
    # Given an invoice in EUR that also states its VAT in SEK
    raw = sample("Allowance-example.xml")

    # When it is parsed
    document = parse_ubl(raw)

    # Then the tax is the EUR amount, and what is payable is net of the prepaid amount
    assert document.tax_amount == Decimal("1225.00")
    assert document.total_amount == Decimal("6125.00")


def test_tax_in_the_tax_currency_is_skipped_wherever_it_comes() -> None:
    # Given the same invoice with its SEK tax total moved before the EUR one
    raw = sample("Allowance-example.xml")
    sek = (
        b"<cac:TaxTotal>\n"
        b'        <cbc:TaxAmount currencyID ="SEK">9324.00</cbc:TaxAmount>\n'
        b"    </cac:TaxTotal>"
    )
    assert sek in raw
    raw = raw.replace(sek, b"").replace(b"<cac:TaxTotal>", sek + b"<cac:TaxTotal>", 1)

    # When it is parsed
    document = parse_ubl(raw)

    # Then the tax is still the EUR amount
    assert document.tax_amount == Decimal("1225.00")


def test_credit_note_stays_positive_and_references_its_invoice() -> None:
    # Given the credit note correcting Snippet1
    raw = sample("base-creditnote-correction.xml")

    # When it is parsed
    document = parse_ubl(raw)

    # Then it is a credit note for a positive amount against Snippet1
    assert document.document_type is DocumentType.CREDIT_NOTE
    assert document.total_amount == Decimal("1656.25")
    assert document.billing_reference == "Snippet1"
    assert document.is_credit
    assert document.invoice_id().startswith("cn_")
    assert [line.quantity for line in document.lines] == [Decimal("7"), Decimal("-3")]


def test_negative_correction_invoice_keeps_its_sign_and_reference() -> None:
    # Given the invoice with a negative amount payable that corrects Snippet1
    raw = sample("base-negative-inv-correction.xml")

    # When it is parsed
    document = parse_ubl(raw)

    # Then it stays an invoice, negative, and says what it corrects
    assert document.document_type is DocumentType.INVOICE
    assert document.total_amount == Decimal("-1656.25")
    assert document.tax_amount == Decimal("-331.25")
    assert document.billing_reference == "Snippet1"
    assert document.is_credit


def test_negative_invoice_without_a_reference_is_refused() -> None:
    # Given the negative correction with its BillingReference taken out
    raw = edited(
        "base-negative-inv-correction.xml",
        "<cbc:ID>Snippet1</cbc:ID>\n        </cac:InvoiceDocumentReference>",
        "</cac:InvoiceDocumentReference>",
    )

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_ubl(raw)

    # Then the payable amount is what is wrong, and why
    assert list(problems(error)) == [PAYABLE]
    assert "must reference the invoice it corrects" in problems(error)[PAYABLE]


def test_parties_without_trading_name_or_identification_fall_back() -> None:
    # Given an example whose buyer has only an endpoint and a registration name
    raw = sample("vat-category-O.xml")

    # When it is parsed
    document = parse_ubl(raw)

    # Then the endpoint is the key and the registered name is used
    assert document.customer.id == "0192:987654325"
    assert document.customer.name == "The Buyercompany"
    assert document.customer.vat_id is None
    assert document.supplier.name == "The Sellercompany Incorporated"
    assert document.supplier.vat_id is None
    assert document.payment_terms == "Payment within 30 days"


def test_supplier_contact_is_not_mistaken_for_the_buyer() -> None:
    # Given an example where only the seller gives an e-mail
    raw = sample("Vat-category-S.xml")

    # When it is parsed
    document = parse_ubl(raw)

    # Then the buyer has no e-mail and the seller keeps theirs
    assert document.customer.email is None
    assert document.supplier.email == "john.doe@foo.bar"


def test_blank_lines_before_the_declaration_are_tolerated() -> None:
    # Given a document with blank lines before its XML declaration
    raw = b"\n\n  " + sample("base-example.xml")

    # When it is parsed
    document = parse_ubl(raw)

    # Then it reads as without them
    assert document.invoice_number == "Snippet1"


def test_an_order_is_not_an_invoice() -> None:
    # Given a UBL Order
    raw = (EVENTS / "ubl_order.xml").read_bytes()

    # When it is parsed
    with pytest.raises(UnsupportedDocumentError) as error:
        parse_ubl(raw)

    # Then the sender is told what it sent
    assert error.value.message == "a UBL Order is not an invoice or credit note"
    assert error.value.to_dict()["error"] == "unsupported_document"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"<html><body>invoice</body></html>", "root element 'html' is not a UBL invoice"),
        (b"<Invoice><ID>1</ID></Invoice>", "not in the UBL 2.1 namespace"),
        (
            b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:'
            b'CrossIndustryInvoice:100"/>',
            "Cross Industry Invoice is not supported",
        ),
    ],
)
def test_other_xml_is_unsupported(raw: bytes, reason: str) -> None:
    # Given XML that is not a UBL invoice or credit note
    # When it is parsed
    with pytest.raises(UnsupportedDocumentError) as error:
        parse_ubl(raw)

    # Then the reason says what it is
    assert reason in error.value.message


@pytest.mark.parametrize("name", ["xml_billion_laughs.xml", "xml_external_entity.xml"])
def test_entity_attacks_are_refused_before_expansion(name: str) -> None:
    # Given a document that declares entities: nested ones, or one read from a file
    raw = (EVENTS / name).read_bytes()

    # When it is parsed
    with pytest.raises(MalformedDocumentError) as error:
        parse_ubl(raw)

    # Then it is refused as malformed because it has a DTD
    assert "declares a DTD" in error.value.message
    assert error.value.to_dict()["error"] == "malformed_document"


def test_xml_that_is_not_well_formed_is_malformed() -> None:
    # Given a truncated document
    raw = sample("base-example.xml")[:500]

    # When it is parsed
    with pytest.raises(MalformedDocumentError) as error:
        parse_ubl(raw)

    # Then the parser's reason is passed on
    assert "not well-formed XML" in error.value.message


def test_unknown_currency_names_the_element() -> None:
    # Given an invoice in currency XYZ
    raw = edited(
        "base-example.xml", ">EUR</cbc:DocumentCurrencyCode>", ">XYZ</cbc:DocumentCurrencyCode>"
    )

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_ubl(raw)

    # Then the XML element is named, and only it
    assert problems(error) == {"cbc:DocumentCurrencyCode": "unknown currency code 'XYZ'"}


def test_payable_amount_in_another_currency_is_refused() -> None:
    # Given an invoice in EUR whose payable amount says USD
    raw = edited(
        "base-example.xml",
        '<cbc:PayableAmount currencyID="EUR">',
        '<cbc:PayableAmount currencyID="USD">',
    )

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_ubl(raw)

    # Then the mismatch is reported on the amount
    assert problems(error) == {PAYABLE: "is in USD, but the document currency is EUR"}


def test_zero_payable_amount_is_refused() -> None:
    # Given an invoice with nothing payable
    raw = edited("base-example.xml", ">1656.25</cbc:PayableAmount>", ">0.00</cbc:PayableAmount>")

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_ubl(raw)

    # Then the payable amount is what is wrong
    assert "must have a positive amount payable" in problems(error)[PAYABLE]


def test_due_date_before_issue_date_names_the_element() -> None:
    # Given an invoice due before it was issued
    raw = edited("base-example.xml", "<cbc:DueDate>2017-12-01<", "<cbc:DueDate>2017-11-01<")

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_ubl(raw)

    # Then the due date element is named
    assert problems(error) == {"cbc:DueDate": "the due date is before the issue date"}


def test_missing_number_bad_email_and_bad_line_are_all_reported() -> None:
    # Given an invoice without its number, with a broken buyer e-mail and a line amount in words
    raw = sample("base-example.xml")
    raw = raw.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"", 1)
    raw = raw.replace(b"lj@buyer.se", b"lj at buyer.se")
    raw = raw.replace(b'currencyID="EUR">-1500<', b'currencyID="EUR">minus 1500<')

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_ubl(raw)

    # Then each is named by its place in the XML
    assert problems(error) == {
        "cbc:ID": "is required",
        CUSTOMER_EMAIL: "is not a valid e-mail address",
        "cac:InvoiceLine[2]/cbc:LineExtensionAmount": "is not a number",
    }


def test_missing_buyer_is_reported() -> None:
    # Given an invoice without an AccountingCustomerParty
    raw = sample("vat-category-Z.xml")
    start = raw.index(b"<cac:AccountingCustomerParty>")
    end = raw.index(b"</cac:AccountingCustomerParty>") + len(b"</cac:AccountingCustomerParty>")
    raw = raw[:start] + raw[end:]

    # When it is parsed
    with pytest.raises(InvalidDocumentError) as error:
        parse_ubl(raw)

    # Then the missing party is named
    assert problems(error) == {"cac:AccountingCustomerParty": "is required"}


@pytest.mark.parametrize(
    ("note", "days"),
    [
        ("Payment within 30 days", 30),
        ("Payable within 14 calendar days", 14),
        ("30 days net", 30),
        ("Net 30", 30),
        ("net45", 45),
        ("2% 10 days, net 30", 30),
        ("Payment within 10 days, 2% discount", None),
        ("Due on receipt", None),
        ("See contract", None),
    ],
)
def test_day_count_is_read_from_payment_terms(note: str, days: int | None) -> None:
    # Given a payment-terms note
    # When the net term is read from it
    # Then a plain or net day count is found, and a discount window is not taken for one
    assert days_from_terms(note) == days
