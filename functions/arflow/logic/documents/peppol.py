"""Peppol BIS Billing 3.0 (UBL 2.1) invoices and credit notes, read into the canonical model.

The XML is parsed by defusedxml with DTDs forbidden: a document that declares one, and so any
entity, is refused before anything is expanded.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import fromstring
from pydantic import ValidationError

from arflow.logic.documents.errors import (
    FieldProblem,
    InvalidDocumentError,
    MalformedDocumentError,
    UnsupportedDocumentError,
)
from arflow.models.invoice import DocumentSource, DocumentType, InvoiceDocument
from arflow.models.money import is_known_currency

UBL_NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:"
NAMESPACES = {
    "cac": f"{UBL_NAMESPACE}CommonAggregateComponents-2",
    "cbc": f"{UBL_NAMESPACE}CommonBasicComponents-2",
}
SUPPLIER = "cac:AccountingSupplierParty/cac:Party"
CUSTOMER = "cac:AccountingCustomerParty/cac:Party"
PAYABLE_AMOUNT = "cac:LegalMonetaryTotal/cbc:PayableAmount"


@dataclass(frozen=True)
class _Layout:
    """Where an Invoice and a CreditNote keep what differs between them."""

    document_type: DocumentType
    line: str
    quantity: str
    due_dates: tuple[str, ...]


_LAYOUTS = {
    f"{{{UBL_NAMESPACE}Invoice-2}}Invoice": _Layout(
        DocumentType.INVOICE,
        line="cac:InvoiceLine",
        quantity="cbc:InvoicedQuantity",
        due_dates=("cbc:DueDate", "cac:PaymentMeans/cbc:PaymentDueDate"),
    ),
    f"{{{UBL_NAMESPACE}CreditNote-2}}CreditNote": _Layout(
        DocumentType.CREDIT_NOTE,
        line="cac:CreditNoteLine",
        quantity="cbc:CreditedQuantity",
        due_dates=("cac:PaymentMeans/cbc:PaymentDueDate",),
    ),
}


def parse_ubl(raw: bytes) -> InvoiceDocument:
    root = _parse_xml(raw)
    layout = _layout(root)
    reader = _Reader(root)

    values = _read_document(reader, layout)
    try:
        document = InvoiceDocument.model_validate(values)
    except ValidationError as error:
        invalid = InvalidDocumentError.from_validation(error, reader.sender_path(layout))
        raise InvalidDocumentError.of(reader.problems + invalid.problems) from None
    if reader.problems:
        raise InvalidDocumentError.of(reader.problems)
    return document


def days_from_terms(note: str) -> int | None:
    """The net payment term in days, when the note states one; None when it does not.

    "Payment within 30 days", "30 days net" and "Net 30" give 30. In a cash-discount term such
    as "Payment within 10 days, 2% discount" the day count is the discount window, not when the
    invoice falls due, so only an explicit "net" counts there.
    """
    text = note.lower()
    net = re.search(r"\bnet\s*(\d{1,4})\b", text) or re.search(
        r"\b(\d{1,4})\s*days?\s+net+\b", text
    )
    if net:
        return int(net[1])
    if "%" in text or "discount" in text or "skonto" in text:
        return None
    within = re.search(r"\bwithin\s+(\d{1,4})\s+(?:calendar\s+)?days?\b", text)
    return int(within[1]) if within else None


def _parse_xml(raw: bytes) -> Element:
    # XML allows nothing before the declaration; a blank line left by a template is forgiven.
    body = raw.removeprefix(b"\xef\xbb\xbf").lstrip()
    try:
        root: Element = fromstring(body, forbid_dtd=True)
    except DTDForbidden:
        raise MalformedDocumentError(
            "the XML declares a DTD; documents with a DTD or entity declarations are refused"
        ) from None
    except DefusedXmlException as error:
        raise MalformedDocumentError(f"the XML uses a feature that is refused: {error}") from None
    except ParseError as error:
        raise MalformedDocumentError(f"the body is not well-formed XML: {error}") from None
    return root


def _layout(root: Element) -> _Layout:
    if root.tag in _LAYOUTS:
        return _LAYOUTS[root.tag]

    namespace, _, name = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", "")
    name = name or root.tag
    if namespace.startswith(UBL_NAMESPACE):
        raise UnsupportedDocumentError(f"a UBL {name} is not an invoice or credit note")
    if name == "CrossIndustryInvoice":
        raise UnsupportedDocumentError(
            "a UN/CEFACT Cross Industry Invoice is not supported: send Peppol BIS Billing 3.0 UBL"
        )
    if name in {"Invoice", "CreditNote"}:
        raise UnsupportedDocumentError(
            f"the root element {name} is not in the UBL 2.1 namespace {UBL_NAMESPACE}{name}-2"
        )
    raise UnsupportedDocumentError(
        f"an XML document with root element {name!r} is not a UBL invoice or credit note"
    )


@dataclass
class _Reader:
    """Reads text from the document and remembers which element each model field came from."""

    root: Element
    paths: dict[str, str] = field(default_factory=dict)
    problems: list[FieldProblem] = field(default_factory=list)

    def text(
        self, model_path: str, *element_paths: str, node: Element | None = None, node_path: str = ""
    ) -> str | None:
        """The first of `element_paths` with text, under `node` (at `node_path`) or the root."""
        base = self.root if node is None else node
        prefix = f"{node_path}/" if node_path else ""
        for path in element_paths:
            value = _text(base.find(path, NAMESPACES))
            if value is not None:
                self.paths[model_path] = prefix + path
                return value
        self.paths[model_path] = prefix + element_paths[0]
        return None

    def sender_path(self, layout: _Layout) -> Callable[[str], str]:
        line_fields = {
            "description": "cac:Item/cbc:Name",
            "quantity": layout.quantity,
            "amount": "cbc:LineExtensionAmount",
        }

        def rename(model_path: str) -> str:
            line = re.fullmatch(r"lines\.(\d+)(?:\.(\w+))?", model_path)
            if line is None:
                return self.paths.get(model_path, model_path)
            element = f"{layout.line}[{int(line[1]) + 1}]"
            return f"{element}/{line_fields.get(line[2], line[2])}" if line[2] else element

        return rename


def _currency_id(element: Element) -> str | None:
    return (element.get("currencyID") or "").strip() or None


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _read_document(reader: _Reader, layout: _Layout) -> dict[str, Any]:
    root = reader.root
    currency = reader.text("currency", "cbc:DocumentCurrencyCode")
    terms = _payment_terms(root)
    reader.paths["payment_terms"] = reader.paths["payment_terms_days"] = "cac:PaymentTerms/cbc:Note"

    values: dict[str, Any] = {
        "document_type": layout.document_type,
        "source": DocumentSource.PEPPOL,
        "invoice_number": reader.text("invoice_number", "cbc:ID"),
        "supplier": _party(reader, "supplier", SUPPLIER, "cac:AccountingSupplierParty"),
        "customer": _party(reader, "customer", CUSTOMER, "cac:AccountingCustomerParty"),
        "issue_date": reader.text("issue_date", "cbc:IssueDate"),
        "due_date": reader.text("due_date", *layout.due_dates),
        "payment_terms": terms,
        "payment_terms_days": days_from_terms(terms) if terms else None,
        "currency": currency,
        "total_amount": _amount(reader, "total_amount", PAYABLE_AMOUNT, currency),
        "tax_amount": _tax_amount(reader, currency),
        "payment_instructions": _payment_instructions(reader),
        "billing_reference": reader.text(
            "billing_reference", "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"
        ),
        "lines": [_line(line, layout) for line in root.findall(layout.line, NAMESPACES)],
    }
    return {name: value for name, value in values.items() if value is not None}


def _party(reader: _Reader, role: str, path: str, role_element: str) -> dict[str, Any] | None:
    party = reader.root.find(path, NAMESPACES)
    reader.paths[role] = role_element if party is None else path
    if party is None:
        return None

    endpoint = party.find("cbc:EndpointID", NAMESPACES)
    endpoint_id = _text(endpoint)
    if endpoint is not None and endpoint_id is not None:
        scheme = endpoint.get("schemeID")
        party_id: str | None = f"{scheme}:{endpoint_id}" if scheme else endpoint_id
        reader.paths[f"{role}.id"] = f"{path}/cbc:EndpointID"
    else:
        party_id = reader.text(
            f"{role}.id",
            "cac:PartyIdentification/cbc:ID",
            "cac:PartyLegalEntity/cbc:CompanyID",
            "cac:PartyTaxScheme/cbc:CompanyID",
            node=party,
            node_path=path,
        )

    values = {
        "id": party_id,
        "name": reader.text(
            f"{role}.name",
            "cac:PartyName/cbc:Name",
            "cac:PartyLegalEntity/cbc:RegistrationName",
            node=party,
            node_path=path,
        ),
        "country": reader.text(
            f"{role}.country",
            "cac:PostalAddress/cac:Country/cbc:IdentificationCode",
            node=party,
            node_path=path,
        ),
        "vat_id": _vat_id(reader, role, party),
        "email": reader.text(
            f"{role}.email", "cac:Contact/cbc:ElectronicMail", node=party, node_path=path
        ),
    }
    return {name: value for name, value in values.items() if value is not None}


def _vat_id(reader: _Reader, role: str, party: Element) -> str | None:
    # A party may be registered in several tax schemes; the VAT one is what goes on notices.
    schemes = party.findall("cac:PartyTaxScheme", NAMESPACES)
    vat = [s for s in schemes if _text(s.find("cac:TaxScheme/cbc:ID", NAMESPACES)) == "VAT"]
    for scheme in vat or schemes:
        company_id = _text(scheme.find("cbc:CompanyID", NAMESPACES))
        if company_id is not None:
            reader.paths[f"{role}.vat_id"] = (
                f"{reader.paths[role]}/cac:PartyTaxScheme/cbc:CompanyID"
            )
            return company_id
    return None


def _amount(reader: _Reader, model_path: str, path: str, currency: str | None) -> str | None:
    """The amount's exact text; its currencyID must be the document currency."""
    element = reader.root.find(path, NAMESPACES)
    reader.paths[model_path] = path
    amount = _text(element)
    if element is None or amount is None:
        return None

    amount_currency = _currency_id(element)
    if currency and is_known_currency(currency) and amount_currency not in {None, currency}:
        reader.problems.append(
            FieldProblem(
                field=path,
                message=f"is in {amount_currency}, but the document currency is {currency}",
            )
        )
    return amount


def _tax_amount(reader: _Reader, currency: str | None) -> str | None:
    # With a separate tax currency there is a second TaxTotal in that currency; it is not owed.
    path = "cac:TaxTotal/cbc:TaxAmount"
    reader.paths["tax_amount"] = path
    for tax_total in reader.root.findall("cac:TaxTotal", NAMESPACES):
        element = tax_total.find("cbc:TaxAmount", NAMESPACES)
        if element is not None and _currency_id(element) in {None, currency}:
            return _text(element)
    return None


def _payment_terms(root: Element) -> str | None:
    notes = [_text(note) for note in root.findall("cac:PaymentTerms/cbc:Note", NAMESPACES)]
    return " ".join(note for note in notes if note) or None


def _payment_instructions(reader: _Reader) -> dict[str, str] | None:
    # Of several means of payment, the one with a bank account is what a notice can quote.
    means = reader.root.findall("cac:PaymentMeans", NAMESPACES)
    if not means:
        return None
    with_account = [m for m in means if m.find("cac:PayeeFinancialAccount", NAMESPACES) is not None]
    chosen = (with_account or means)[0]

    account = "cac:PayeeFinancialAccount"
    found = {
        "iban": _text(chosen.find(f"{account}/cbc:ID", NAMESPACES)),
        "bic": _text(chosen.find(f"{account}/cac:FinancialInstitutionBranch/cbc:ID", NAMESPACES)),
        "account_name": _text(chosen.find(f"{account}/cbc:Name", NAMESPACES)),
        "payment_reference": _text(chosen.find("cbc:PaymentID", NAMESPACES)),
    }
    instructions = {name: value for name, value in found.items() if value is not None}
    return instructions or None


def _line(line: Element, layout: _Layout) -> dict[str, Any]:
    number = _text(line.find("cbc:ID", NAMESPACES))
    values = {
        "description": _text(line.find("cac:Item/cbc:Name", NAMESPACES))
        or _text(line.find("cac:Item/cbc:Description", NAMESPACES))
        or f"Line {number or '?'}",
        "quantity": _text(line.find(layout.quantity, NAMESPACES)),
        "amount": _text(line.find("cbc:LineExtensionAmount", NAMESPACES)),
    }
    return {name: value for name, value in values.items() if value is not None}
