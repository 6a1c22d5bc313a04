"""The canonical invoice document: what every source (JSON, Peppol UBL, Stripe) is turned into.

Its JSON Schema (schemas/invoice.schema.json) is generated from these models, and the canonical JSON
webhook accepts exactly this shape.
"""

import hashlib
import json
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arflow.models.money import is_known_currency, quantize

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$", max_length=254)]


class DocumentType(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class DocumentSource(StrEnum):
    CANONICAL = "canonical"
    PEPPOL = "peppol"
    STRIPE = "stripe"


class Party(BaseModel):
    """A supplier or a buyer. `id` is the key the product knows the party by."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200, description="Stable identifier of the party")
    name: str = Field(min_length=1, max_length=500)
    email: EmailAddress | None = None
    country: CountryCode | None = None
    locale: str | None = Field(
        default=None, pattern=r"^[a-z]{2}([-_][A-Za-z]{2,4})?$", description="e.g. en, zh-CN"
    )
    vat_id: str | None = None
    industry_code: str | None = Field(default=None, description="NACE or ISIC code")


class PaymentInstructions(BaseModel):
    """How the buyer is asked to pay; quoted in every notice."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    iban: str | None = None
    bic: str | None = None
    account_name: str | None = None
    payment_reference: str | None = None
    payment_url: str | None = None
    note: str | None = None


class InvoiceLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    quantity: Decimal | None = None
    amount: Decimal


class InvoiceDocument(BaseModel):
    """An invoice or credit note as it arrived, normalised. Amounts include tax."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    document_type: DocumentType = DocumentType.INVOICE
    source: DocumentSource = DocumentSource.CANONICAL
    invoice_number: str = Field(min_length=1, max_length=200)
    supplier: Party
    customer: Party
    issue_date: date
    due_date: date | None = Field(
        default=None, description="When absent, derived from payment terms or the policy"
    )
    payment_terms: str | None = Field(default=None, description="Terms as written on the invoice")
    payment_terms_days: int | None = Field(default=None, ge=0, le=3650)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")
    total_amount: Decimal = Field(description="Amount payable, tax included")
    tax_amount: Decimal | None = None
    payment_instructions: PaymentInstructions | None = None
    billing_reference: str | None = Field(
        default=None, description="For a credit note: the invoice number it corrects"
    )
    lines: list[InvoiceLine] = Field(default_factory=list)
    insured: bool | None = Field(
        default=None, description="Override of the policy's insurance cover for this invoice"
    )
    source_id: str | None = Field(
        default=None,
        max_length=200,
        description="The sender's own id for the document when it is not the number "
        "(Stripe's in_... or cn_...): what the sender's credit notes and payments refer to",
    )

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if not is_known_currency(value):
            raise ValueError(f"unknown currency code {value!r}")
        return value

    @field_validator("total_amount", "tax_amount")
    @classmethod
    def _amount_in_range(cls, value: Decimal | None) -> Decimal | None:
        # Rounding to the minor unit raises, rather than fails validation, past decimal precision.
        if value is not None and value.adjusted() >= 18:
            raise ValueError("the amount is too large")
        return value

    @model_validator(mode="after")
    def _credit_note_not_negative(self) -> "InvoiceDocument":
        if self.document_type is DocumentType.CREDIT_NOTE and self.total_amount < 0:
            raise ValueError(
                "total_amount: a credit note's amount must not be negative "
                "(it is the document type that says it reduces what is owed)"
            )
        return self

    @model_validator(mode="after")
    def _amounts_and_dates(self) -> "InvoiceDocument":
        self.total_amount = quantize(self.total_amount, self.currency)
        if self.tax_amount is not None:
            self.tax_amount = quantize(self.tax_amount, self.currency)
        if self.document_type is DocumentType.INVOICE and self.total_amount <= 0:
            if self.billing_reference is None:
                raise ValueError(
                    "total_amount: an invoice must have a positive amount payable "
                    "(a negative correction must reference the invoice it corrects)"
                )
        if self.due_date is not None and self.due_date < self.issue_date:
            raise ValueError("due_date: the due date is before the issue date")
        return self

    @property
    def is_credit(self) -> bool:
        """A credit note, or a negative correction invoice: reduces what is owed."""
        return self.document_type is DocumentType.CREDIT_NOTE or self.total_amount < 0

    def invoice_id(self) -> str:
        """Stable id from supplier and number (or the sender's own id, which references use)."""
        return document_id(
            self.supplier.id, self.source_id or self.invoice_number, self.document_type
        )

    def content_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def document_id(supplier_id: str, invoice_number: str, document_type: str = "invoice") -> str:
    key = f"{supplier_id}\x1f{invoice_number}\x1f{document_type}".encode()
    prefix = "cn" if document_type == DocumentType.CREDIT_NOTE else "inv"
    return f"{prefix}_{hashlib.sha256(key).hexdigest()[:20]}"


class Payment(BaseModel):
    """Money received against an invoice, as posted to the payment webhook."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    payment_id: str = Field(min_length=1, max_length=200, description="Sender's id; dedupes")
    supplier_id: str | None = None
    invoice_number: str | None = None
    invoice_id: str | None = None
    amount: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount_in_invoice_currency: Decimal | None = Field(
        default=None, gt=0, description="What the payment is worth in the invoice's currency"
    )
    received_at: str | None = Field(default=None, description="ISO 8601; defaults to now")
    method: Literal["bank_transfer", "card", "direct_debit", "cash", "other"] = "bank_transfer"

    @model_validator(mode="after")
    def _identifies_invoice(self) -> "Payment":
        if self.invoice_id is None and (self.supplier_id is None or self.invoice_number is None):
            raise ValueError("name the invoice: invoice_id, or supplier_id with invoice_number")
        return self
