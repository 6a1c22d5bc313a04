"""What is stored: invoices, customers, and the append-only history the timeline is built from."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from arflow.models.credit import CreditReport
from arflow.models.invoice import InvoiceDocument


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    CREDITED = "credited"
    APPLIED = "applied"  # a credit note, once its amount has gone where it belongs
    WRITTEN_OFF = "written_off"


SETTLED = frozenset({InvoiceStatus.PAID, InvoiceStatus.CREDITED})


class DueDateSource(StrEnum):
    INVOICE = "invoice"
    PAYMENT_TERMS = "payment_terms"
    CUSTOMER_TERMS = "customer_terms"
    POLICY_DEFAULT = "policy_default"


class Outcome(StrEnum):
    """How a lifecycle ended."""

    PAID = "PAID"
    CREDITED = "CREDITED"
    CLAIMED = "CLAIMED"
    ESCALATED = "ESCALATED"
    WRITTEN_OFF = "WRITTEN_OFF"
    FAILED = "FAILED"


class TimelineEvent(StrEnum):
    INVOICE_RECEIVED = "invoice_received"
    INVOICE_REJECTED = "invoice_rejected"
    CREDIT_APPLIED = "credit_applied"
    CREDIT_CHECKED = "credit_checked"
    REMINDER_SENT = "reminder_sent"
    OVERDUE_NOTICE_SENT = "overdue_notice_sent"
    FORMAL_NOTICE_SENT = "formal_notice_sent"
    ORDER_HOLD_PLACED = "order_hold_placed"
    ORDER_HOLD_RELEASED = "order_hold_released"
    FINANCE_ESCALATED = "finance_escalated"
    INSURER_NOTIFIED = "insurer_notified"
    CLAIM_SUBMITTED = "claim_submitted"
    PAYMENT_RECEIVED = "payment_received"
    INVOICE_SETTLED = "invoice_settled"
    LIFECYCLE_ENDED = "lifecycle_ended"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_RESOLVED = "dispute_resolved"
    PROMISE_RECORDED = "promise_recorded"
    PROMISE_BROKEN = "promise_broken"
    DUNNING_PAUSED = "dunning_paused"
    DUNNING_RESUMED = "dunning_resumed"
    WRITTEN_OFF = "written_off"
    CREDIT_LIMIT_CHANGED = "credit_limit_changed"
    CREDIT_REVIEW_COMPLETED = "credit_review_completed"
    CREDIT_OVERRIDE = "credit_override"


def customer_timeline_id(customer_id: str) -> str:
    """Customer-level events (limits, reviews, overrides) sit in the timeline under this id."""
    return f"customer:{customer_id}"


class Dispute(BaseModel):
    """The customer contests the invoice: no notice, escalation or claim while it stands."""

    reason: str
    opened_at: datetime
    opened_by: str | None = None


class Promise(BaseModel):
    """The customer promised to pay by a date: the next notice waits until the day after."""

    pay_by: date
    recorded_at: datetime
    resume_at: datetime


class Pause(BaseModel):
    """Dunning of all the customer's invoices paused, e.g. at an account manager's request."""

    reason: str
    until: datetime
    paused_at: datetime
    paused_by: str | None = None


class InvoiceRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    invoice_id: str
    customer_id: str
    supplier_id: str
    invoice_number: str
    document: InvoiceDocument
    content_hash: str
    currency: str
    total_amount: Decimal
    amount_paid: Decimal = Decimal(0)
    amount_credited: Decimal = Decimal(0)
    balance: Decimal
    issue_date: date
    due_date: date
    due_date_source: DueDateSource
    status: InvoiceStatus = InvoiceStatus.OPEN
    insured: bool = False
    received_at: datetime
    execution_arn: str | None = None
    task_token: str | None = None
    stages: dict[str, str] = Field(default_factory=dict, description="stage -> ISO time it ran")
    skipped_stages: list[str] = Field(default_factory=list)
    outcome: Outcome | None = None
    dispute: Dispute | None = None
    promise: Promise | None = None
    paused: str | None = Field(default=None, description="Why dunning is paused, while it is")
    write_off_reason: str | None = None
    settled_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Open and still owed: a zero balance counts as closed even before it is marked settled."""
        return self.status is InvoiceStatus.OPEN and self.balance > 0

    @property
    def insurable(self) -> bool:
        """Covered by the policy, and not disputed: an insurer does not pay a contested debt."""
        return self.insured and self.dispute is None


class DecisionSummary(BaseModel):
    """The customer's latest credit decision, kept on its record; the full one is in the log."""

    kind: str
    grade: str | None = None
    score: int | None = None
    credit_limit: Decimal
    currency: str
    decided_at: datetime
    source: str = Field(description="assessment, review or override")


class HoldReason(BaseModel):
    reason: str
    invoice_id: str | None = None
    placed_at: datetime


class CustomerRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    customer_id: str
    name: str
    email: str | None = None
    country: str | None = None
    locale: str | None = None
    first_seen: datetime
    credit_limit: Decimal | None = None
    credit_currency: str | None = None
    credit_balance: dict[str, Decimal] = Field(
        default_factory=dict, description="Unapplied credit by currency"
    )
    payment_terms_days: int | None = None
    review_due: date | None = None
    holds: dict[str, HoldReason] = Field(default_factory=dict)
    on_hold: bool = False
    pause: Pause | None = None
    industry_code: str | None = None
    vat_id: str | None = None
    exposure: Decimal = Field(default=Decimal(0), description="Open balances, kept atomically")
    exposure_invoices: dict[str, Decimal] = Field(default_factory=dict)
    open_orders: Decimal = Field(
        default=Decimal(0), description="Orders not yet invoiced, as the order system reports"
    )
    credit_report: CreditReport | None = None
    last_decision: DecisionSummary | None = None


class HistoryEvent(BaseModel):
    """One line of an invoice's append-only history (EventsTable)."""

    invoice_id: str
    seq: str
    at: datetime
    event: TimelineEvent
    customer_id: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
