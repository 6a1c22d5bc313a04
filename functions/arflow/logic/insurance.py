"""Trade-credit insurance in the lifecycle: notify the insurer of the overdue, then claim."""

from datetime import datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from arflow.config import environment
from arflow.dal.aws import client
from arflow.dal.insurer import InsurerAdapter, InsurerUnavailableError, insurer_from_env
from arflow.dal.store import StageClaim
from arflow.errors import TransientServiceError
from arflow.logic.claims import build_claim_pack, build_overdue_notification
from arflow.logic.dunning import stopped_since_claim
from arflow.models.claim import ClaimInvoice, PaymentRecord, SentNotice
from arflow.models.claim import TimelineEvent as PackEvent
from arflow.models.notice import NoticeKind
from arflow.models.policy import Stage
from arflow.models.records import InvoiceRecord, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")

INSURER_NOTIFICATION = "insurer_notification"
NOTICE_EVENTS = {
    TimelineEvent.REMINDER_SENT: NoticeKind.REMINDER,
    TimelineEvent.OVERDUE_NOTICE_SENT: NoticeKind.OVERDUE_NOTICE,
    TimelineEvent.FORMAL_NOTICE_SENT: NoticeKind.FORMAL_NOTICE,
}


def insurer(services: Services) -> InsurerAdapter:
    # Resources are not thread-safe; one per call keeps concurrent local executions apart.
    dynamodb = boto3.resource("dynamodb", region_name=services.settings.region)
    return insurer_from_env(
        environment(), dynamodb, client("secretsmanager", services.settings.region)
    )


def claim_invoice(invoice: InvoiceRecord) -> ClaimInvoice:
    document = invoice.document
    return ClaimInvoice(
        invoice_id=invoice.invoice_id,
        invoice_number=invoice.invoice_number,
        supplier_id=invoice.supplier_id,
        supplier_name=document.supplier.name,
        customer_id=invoice.customer_id,
        customer_name=document.customer.name,
        customer_country=document.customer.country,
        currency=invoice.currency,
        total_amount=invoice.total_amount,
        amount_credited=invoice.amount_credited,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        payment_instructions=document.payment_instructions,
        insured=document.insured,
    )


def notify_insurer(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    """Tell the insurer of the overdue (once), while the policy's deadline allows."""
    invoice = services.invoices.require(invoice_id)
    if not invoice.insurable:
        return {"notified": False, "why": "not_insured"}
    claim = services.invoices.claim_stage(
        invoice_id, invoice.customer_id, INSURER_NOTIFICATION, now
    )
    if claim is not StageClaim.CLAIMED:
        return {"notified": False, "why": claim.value}
    try:
        notification = build_overdue_notification(
            claim_invoice(invoice), invoice.balance, now, services.policy()
        )
        place = services.history.reserve(now)
        stopped = stopped_since_claim(services, invoice_id, now)
        if stopped is not None:
            if stopped != "settled":
                services.invoices.release_stage(invoice_id, INSURER_NOTIFICATION)
            return {"notified": False, "why": f"{stopped}_meanwhile"}
        receipt = insurer(services).notify_overdue(notification)
    except InsurerUnavailableError as error:
        services.invoices.release_stage(invoice_id, INSURER_NOTIFICATION)
        raise TransientServiceError(str(error)) from error
    except Exception:
        services.invoices.release_stage(invoice_id, INSURER_NOTIFICATION)
        raise
    services.history.append(
        invoice_id,
        TimelineEvent.INSURER_NOTIFIED,
        now,
        {
            "insurer": receipt.insurer,
            "reference": receipt.reference,
            "amount_outstanding": str(notification.amount_outstanding),
            "currency": notification.currency,
            "days_overdue": notification.days_overdue,
            "deadline": notification.deadline.isoformat(),
            "within_deadline": notification.within_deadline,
        },
        invoice.customer_id,
        place,
    )
    logger.info("Insurer notified", invoice_id=invoice_id, reference=receipt.reference)
    return {"notified": True, "reference": receipt.reference}


def submit_claim(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    """The buyer has defaulted: build the claim pack, store it, and submit it, once."""
    owner = services.invoices.require(invoice_id).customer_id
    claim = services.invoices.claim_stage(invoice_id, owner, Stage.CLAIM.value, now)
    if claim is not StageClaim.CLAIMED:
        return {"submitted": False, "why": claim.value}
    try:
        return _submit_claim(services, invoice_id, now)
    except InsurerUnavailableError as error:
        services.invoices.release_stage(invoice_id, Stage.CLAIM.value)
        raise TransientServiceError(str(error)) from error
    except Exception:
        services.invoices.release_stage(invoice_id, Stage.CLAIM.value)
        raise


def _submit_claim(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    invoice = services.invoices.require(invoice_id)
    history = services.history.for_invoice(invoice_id)
    notices = [
        SentNotice(
            kind=NOTICE_EVENTS[e.event],
            sent_at=e.at,
            recipient=str(e.detail.get("to", "")),
            subject=str(e.detail.get("subject", "")),
            s3_key=e.detail.get("letter_key"),
            message_id=e.detail.get("message_id"),
        )
        for e in history
        if e.event in NOTICE_EVENTS
    ]
    payments = [
        PaymentRecord(payment_id=p["payment_id"], amount=p["amount"], received_at=p["received_at"])
        for p in services.payments.for_invoice(invoice_id)
    ]
    pack = build_claim_pack(
        claim_invoice(invoice),
        notices=notices,
        letters=[n.s3_key for n in notices if n.s3_key],
        payments=sorted(payments, key=lambda p: p.received_at),
        timeline=[
            PackEvent(at=e.at, event=e.event.value, detail=_short(e.detail)) for e in history
        ],
        policy=services.policy(),
        prepared_at=now,
    )
    place = services.history.reserve(now)
    stopped = stopped_since_claim(services, invoice_id, now)
    if stopped is not None:
        if stopped != "settled":
            services.invoices.release_stage(invoice_id, Stage.CLAIM.value)
        return {"submitted": False, "why": f"{stopped}_meanwhile"}
    pack_key = f"claims/{invoice_id}/claim-pack.json"
    summary_key = f"claims/{invoice_id}/claim-summary.html"
    services.documents.put(pack_key, pack.to_json(), "application/json")
    services.documents.put(summary_key, pack.to_html().encode(), "text/html; charset=utf-8")
    receipt = insurer(services).submit_claim(pack.submission(pack_key, summary_key))

    services.history.append(
        invoice_id,
        TimelineEvent.CLAIM_SUBMITTED,
        now,
        {
            "insurer": receipt.insurer,
            "reference": receipt.reference,
            "amount_outstanding": str(pack.amount_outstanding),
            "insured_loss": str(pack.insured_loss),
            "indemnity_percent": str(pack.indemnity_percent),
            "amount_claimed": str(pack.amount_claimed),
            "currency": invoice.currency,
            "pack_key": pack_key,
            "summary_key": summary_key,
        },
        invoice.customer_id,
        place,
    )
    logger.info("Claim submitted", invoice_id=invoice_id, reference=receipt.reference)
    return {"submitted": True, "reference": receipt.reference}


def _short(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, dict | list))[:300]
