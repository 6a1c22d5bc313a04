"""An invoice or credit note arrives: store it once, then start its lifecycle or apply it."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from arflow.dal.store import DuplicateInvoiceError
from arflow.dal.workflow import Lifecycles
from arflow.errors import InvoiceConflictError
from arflow.logic.claims import is_insured
from arflow.logic.schedule import resolve_due_date
from arflow.logic.settlement import apply_held_payments, settle
from arflow.models.invoice import DocumentType, InvoiceDocument, document_id
from arflow.models.records import InvoiceRecord, InvoiceStatus, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")


@dataclass(frozen=True)
class IntakeResult:
    invoice_id: str
    status: str  # "accepted", "duplicate", "credit_applied"
    execution_arn: str | None = None
    detail: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "status": self.status,
            "execution_arn": self.execution_arn,
            **(self.detail or {}),
        }


def receive_document(
    services: Services, document: InvoiceDocument, now: datetime, content_digest: str | None = None
) -> IntakeResult:
    """Store a document once and act on it.

    `content_digest` identifies what the sender sent (the UBL document itself, the Stripe object);
    two deliveries with the same number and different content are a conflict, not a redelivery.
    """
    policy = services.policy()
    customer = services.customers.record_buyer(document.customer, document.currency, now, policy)
    agreed_terms = customer.payment_terms_days or policy.customer_payment_terms_days.get(
        document.customer.id
    )
    due_date, due_source = resolve_due_date(document, agreed_terms, policy)
    invoice_id = document.invoice_id()
    amount = abs(document.total_amount)
    record = InvoiceRecord(
        invoice_id=invoice_id,
        customer_id=document.customer.id,
        supplier_id=document.supplier.id,
        invoice_number=document.invoice_number,
        document=document,
        content_hash=content_digest or document.content_hash(),
        currency=document.currency,
        total_amount=document.total_amount,
        balance=amount if not document.is_credit else Decimal(0),
        issue_date=document.issue_date,
        due_date=due_date,
        due_date_source=due_source,
        status=InvoiceStatus.OPEN if not document.is_credit else InvoiceStatus.APPLIED,
        insured=is_insured(policy, document.insured) and not document.is_credit,
        received_at=now,
    )

    try:
        services.invoices.put_new(record)
    except DuplicateInvoiceError as duplicate:
        return _redelivery(services, duplicate.existing, record, now)

    if document.is_credit:
        return _apply_credit(services, record, now)

    services.history.append(
        invoice_id,
        TimelineEvent.INVOICE_RECEIVED,
        now,
        {
            "invoice_number": document.invoice_number,
            "amount": str(document.total_amount),
            "currency": document.currency,
            "issue_date": document.issue_date.isoformat(),
            "due_date": due_date.isoformat(),
            "due_date_source": due_source.value,
            "source": document.source.value,
            "insured": record.insured,
        },
        customer_id=record.customer_id,
    )
    # Money that came first is applied before the lifecycle plans anything.
    apply_held_payments(services, record, now)
    lifecycles = Lifecycles(services.settings.state_machine_arn, services.settings.region)
    execution_arn = lifecycles.start(invoice_id, {"invoice_id": invoice_id})
    services.invoices.set_execution(invoice_id, execution_arn)
    logger.info("Lifecycle started", invoice_id=invoice_id, execution=execution_arn)
    return IntakeResult(
        invoice_id,
        "accepted",
        execution_arn,
        {"due_date": due_date.isoformat(), "due_date_source": due_source.value},
    )


def _redelivery(
    services: Services, existing: InvoiceRecord, arriving: InvoiceRecord, now: datetime
) -> IntakeResult:
    """The same document twice changes nothing; the same number with other content is a conflict."""
    if existing.content_hash != arriving.content_hash:
        raise InvoiceConflictError(
            f"invoice {arriving.invoice_number} of supplier {arriving.supplier_id} was already "
            "received with different content; send a credit note or a new invoice number"
        )
    # The history says it came again, so that no delivery goes unaccounted for.
    services.history.append(
        existing.invoice_id,
        TimelineEvent.INVOICE_RECEIVED,
        now,
        {"invoice_number": existing.invoice_number, "redelivery": True},
        customer_id=existing.customer_id,
    )
    return IntakeResult(existing.invoice_id, "duplicate", existing.execution_arn)


def _apply_credit(services: Services, credit: InvoiceRecord, now: datetime) -> IntakeResult:
    """A credit note or negative correction reduces the invoice it references, else is credit."""
    amount = abs(credit.total_amount)
    reference = credit.document.billing_reference
    target_id = (
        document_id(credit.supplier_id, reference, DocumentType.INVOICE) if reference else None
    )
    target = services.invoices.get(target_id) if target_id else None
    detail: dict[str, Any] = {
        "credit_note": credit.invoice_number,
        "amount": str(amount),
        "currency": credit.currency,
        "reference": reference,
    }

    if target is not None and target.currency == credit.currency and target.is_open:
        applied = min(amount, target.balance)
        updated = services.invoices.reduce_balance(target.invoice_id, "amount_credited", applied)
        if updated is not None:
            services.customers.reduce_exposure(target.customer_id, target.invoice_id, applied)
            excess = amount - applied
            if excess > 0:
                services.customers.add_credit(credit.customer_id, credit.currency, excess)
            detail |= {"applied_to": target.invoice_id, "balance": str(updated.balance)}
            if excess > 0:
                detail["customer_credit"] = str(excess)
            services.history.append(
                target.invoice_id, TimelineEvent.CREDIT_APPLIED, now, detail, target.customer_id
            )
            if updated.balance <= 0:
                settle(services, updated, InvoiceStatus.CREDITED, now)
            services.invoices.mark_applied(credit.invoice_id)
            return IntakeResult(credit.invoice_id, "credit_applied", None, detail)

    # No open invoice of that number and currency: the amount is the customer's to use.
    services.customers.add_credit(credit.customer_id, credit.currency, amount)
    detail |= {"applied_to": "customer_credit", "customer_id": credit.customer_id}
    services.history.append(
        credit.invoice_id, TimelineEvent.CREDIT_APPLIED, now, detail, credit.customer_id
    )
    return IntakeResult(credit.invoice_id, "credit_applied", None, detail)
