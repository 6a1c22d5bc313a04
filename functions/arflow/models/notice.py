"""What a notice says: the data a template renders, and the e-mail that comes out."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from arflow.models.invoice import PaymentInstructions
from arflow.models.policy import LateFeeTerms


class NoticeKind(StrEnum):
    # To the customer.
    REMINDER = "reminder"
    OVERDUE_NOTICE = "overdue_notice"
    FORMAL_NOTICE = "formal_notice"
    # To finance.
    FINANCE_ESCALATION = "finance_escalation"
    CUSTOMER_UNREACHABLE = "customer_unreachable"
    CREDIT_ALERT = "credit_alert"
    STEP_FAILED = "step_failed"
    # To the insurer (through the insurer adapter, rendered for the claim pack).
    INSURER_NOTIFICATION = "insurer_notification"


CUSTOMER_NOTICES = frozenset(
    {NoticeKind.REMINDER, NoticeKind.OVERDUE_NOTICE, NoticeKind.FORMAL_NOTICE}
)


class OpenItem(BaseModel):
    """One open invoice of the customer, for notices that list several."""

    invoice_number: str
    currency: str
    amount_outstanding: Decimal
    due_date: date
    days_overdue: int


class HistoryLine(BaseModel):
    at: datetime
    event: str
    detail: str = ""


class NoticeContext(BaseModel):
    """Everything a notice template may show. Dates are already local to the recipient."""

    model_config = ConfigDict(extra="forbid")

    kind: NoticeKind
    locale: str = "en"
    recipient_email: str | None
    recipient_name: str
    customer_id: str
    customer_name: str
    supplier_name: str
    sender_email: str
    invoice_id: str
    invoice_number: str
    currency: str
    total_amount: Decimal
    amount_outstanding: Decimal
    issue_date: date
    due_date: date
    days_overdue: int = Field(description="Negative while the invoice is not yet due")
    payment_instructions: PaymentInstructions | None = None
    late_fee: LateFeeTerms | None = None
    open_items: list[OpenItem] = Field(default_factory=list)
    letter_reference: str | None = None
    # Finance-facing facts.
    reason: str | None = None
    exposure: Decimal | None = None
    credit_limit: Decimal | None = None
    history: list[HistoryLine] = Field(default_factory=list)
    legal_referral: bool = False
    undelivered_notice: NoticeKind | None = Field(
        default=None, description="For customer_unreachable: the customer notice not sent"
    )
    # Insurer-facing facts.
    insurance_policy_number: str | None = None


class RenderedNotice(BaseModel):
    kind: NoticeKind
    locale: str
    subject: str
    text: str
    html: str
