"""What goes to the trade-credit insurer: the overdue notification, the claim, and its receipt."""

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from arflow.models.instants import UtcDatetime
from arflow.models.invoice import PaymentInstructions
from arflow.models.money import quantize
from arflow.models.notice import NoticeKind

SubmissionKind = Literal["notification", "claim"]
SubmissionStatus = Literal["received", "accepted", "under_review", "rejected"]


class InsuredInvoiceFacts(BaseModel):
    """The buyer and invoice facts every submission to the insurer carries."""

    model_config = ConfigDict(extra="forbid")

    policy_number: str
    insurer: str
    supplier_id: str
    supplier_name: str
    customer_id: str
    customer_name: str
    customer_country: str | None = None
    invoice_id: str
    invoice_number: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount_outstanding: Decimal = Field(ge=0)
    due_date: date
    days_overdue: int

    @model_validator(mode="after")
    def _outstanding_in_minor_units(self) -> Self:
        self.amount_outstanding = quantize(self.amount_outstanding, self.currency)
        return self


class OverdueNotification(InsuredInvoiceFacts):
    """Tells the insurer an insured invoice is overdue, before the policy's deadline runs out."""

    notified_at: UtcDatetime
    deadline: date = Field(description="The last day the policy allows the notification")
    within_deadline: bool


class PackDocumentKind(StrEnum):
    MANIFEST = "manifest"
    SUMMARY = "summary"
    NOTICE = "notice"
    LETTER = "letter"
    PAYMENT_HISTORY = "payment_history"
    TIMELINE = "timeline"


class PackDocument(BaseModel):
    """One item of the claim pack: stored in S3 (`key`) or carried in the submission (`inline`)."""

    model_config = ConfigDict(extra="forbid")

    kind: PackDocumentKind
    key: str | None = Field(default=None, description="S3 key in the documents bucket")
    inline: str | None = Field(default=None, description="The content itself, when it is short")
    description: str

    @model_validator(mode="after")
    def _key_or_inline(self) -> Self:
        if (self.key is None) == (self.inline is None):
            raise ValueError("a pack document has either a key or inline content, not both")
        return self


class ClaimSubmission(InsuredInvoiceFacts):
    """The claim for an insured invoice the buyer has not paid: what is owed and what is asked."""

    claimed_at: UtcDatetime
    invoice_total: Decimal
    amount_paid: Decimal = Field(ge=0)
    insured_loss: Decimal = Field(ge=0)
    indemnity_percent: Decimal = Field(gt=0, le=100)
    amount_claimed: Decimal = Field(ge=0)
    pack_key: str = Field(min_length=1, description="S3 key of the claim pack's manifest")
    documents: list[PackDocument] = Field(default_factory=list)

    @model_validator(mode="after")
    def _claim_within_loss(self) -> Self:
        self.invoice_total = quantize(self.invoice_total, self.currency)
        self.amount_paid = quantize(self.amount_paid, self.currency)
        self.insured_loss = quantize(self.insured_loss, self.currency)
        self.amount_claimed = quantize(self.amount_claimed, self.currency)
        if self.insured_loss > self.amount_outstanding:
            raise ValueError("insured_loss: the insured loss exceeds the amount outstanding")
        if self.amount_claimed > self.insured_loss:
            raise ValueError("amount_claimed: the amount claimed exceeds the insured loss")
        return self


class SubmissionReceipt(BaseModel):
    """The insurer's acknowledgement of a notification or a claim."""

    model_config = ConfigDict(extra="forbid")

    insurer: str
    reference: str = Field(min_length=1, max_length=200)
    kind: SubmissionKind
    submitted_at: UtcDatetime
    status: SubmissionStatus = "received"


# What a claim pack is built from: the invoice as the product knows it and what was done about it.


class ClaimInvoice(BaseModel):
    """The invoice facts a notification and a claim pack are built from."""

    model_config = ConfigDict(extra="forbid")

    invoice_id: str
    invoice_number: str
    supplier_id: str
    supplier_name: str
    customer_id: str
    customer_name: str
    customer_country: str | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total_amount: Decimal = Field(gt=0, description="Amount payable, tax included")
    amount_credited: Decimal = Field(
        default=Decimal(0), ge=0, description="Credit notes applied against the invoice"
    )
    issue_date: date
    due_date: date
    payment_instructions: PaymentInstructions | None = None
    insured: bool | None = Field(
        default=None, description="The document's override of the policy's cover"
    )

    @model_validator(mode="after")
    def _amounts_in_minor_units(self) -> Self:
        self.total_amount = quantize(self.total_amount, self.currency)
        self.amount_credited = quantize(self.amount_credited, self.currency)
        return self


class SentNotice(BaseModel):
    """A notice that went out: the archived copy's S3 key, or the mail provider's message id."""

    model_config = ConfigDict(extra="forbid")

    kind: NoticeKind
    sent_at: UtcDatetime
    recipient: str
    subject: str
    s3_key: str | None = None
    message_id: str | None = None

    @model_validator(mode="after")
    def _traceable(self) -> Self:
        if self.s3_key is None and self.message_id is None:
            raise ValueError("a sent notice needs its archived copy's key or its message id")
        return self


class PaymentRecord(BaseModel):
    """Money received against the invoice, in the invoice's currency."""

    model_config = ConfigDict(extra="forbid")

    payment_id: str
    amount: Decimal = Field(gt=0)
    received_at: UtcDatetime


class TimelineEvent(BaseModel):
    """One line of the invoice's history, as the events table holds it."""

    model_config = ConfigDict(extra="forbid")

    at: UtcDatetime
    event: str
    detail: str = ""
