"""The dunning ladder's notices: to the customer (reminders, the formal letter) and to finance."""

from datetime import datetime
from email.utils import make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from arflow.dal.store import StageClaim
from arflow.logic.notices import NoticeRenderer, build_email, locale_for
from arflow.models.notice import HistoryLine, NoticeContext, NoticeKind, OpenItem
from arflow.models.policy import Policy, Stage
from arflow.models.records import CustomerRecord, InvoiceRecord, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")

CUSTOMER_NOTICE_FOR_STAGE = {
    Stage.REMINDER: (NoticeKind.REMINDER, TimelineEvent.REMINDER_SENT),
    Stage.OVERDUE_NOTICE: (NoticeKind.OVERDUE_NOTICE, TimelineEvent.OVERDUE_NOTICE_SENT),
    Stage.FORMAL_NOTICE: (NoticeKind.FORMAL_NOTICE, TimelineEvent.FORMAL_NOTICE_SENT),
}


@lru_cache(maxsize=4)
def renderer_for(templates_dir: Path) -> NoticeRenderer:
    return NoticeRenderer(templates_dir)


def local_today(policy: Policy, now: datetime) -> Any:
    return now.astimezone(ZoneInfo(policy.timezone)).date()


def notice_context(
    kind: NoticeKind,
    invoice: InvoiceRecord,
    customer: CustomerRecord,
    policy: Policy,
    now: datetime,
    open_invoices: list[InvoiceRecord],
    sender: str,
    **extra: Any,
) -> NoticeContext:
    today = local_today(policy, now)
    document = invoice.document
    items = [
        OpenItem(
            invoice_number=i.invoice_number,
            currency=i.currency,
            amount_outstanding=i.balance,
            due_date=i.due_date,
            days_overdue=(today - i.due_date).days,
        )
        for i in sorted(open_invoices, key=lambda i: (i.due_date, i.invoice_number))
    ]
    return NoticeContext(
        kind=kind,
        locale=locale_for(customer.locale or document.customer.locale, customer.country),
        recipient_email=customer.email,
        recipient_name=document.customer.name,
        customer_id=customer.customer_id,
        customer_name=customer.name,
        supplier_name=document.supplier.name,
        sender_email=sender,
        invoice_id=invoice.invoice_id,
        invoice_number=invoice.invoice_number,
        currency=invoice.currency,
        total_amount=invoice.total_amount,
        amount_outstanding=invoice.balance,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        days_overdue=(today - invoice.due_date).days,
        payment_instructions=document.payment_instructions,
        open_items=items if len(items) > 1 else [],
        **extra,
    )


def send_customer_notice(
    services: Services, invoice_id: str, stage: Stage, now: datetime
) -> dict[str, Any]:
    """Send the stage's notice once, and only while the invoice is still open."""
    invoice = services.invoices.require(invoice_id)
    claim = services.invoices.claim_stage(invoice_id, invoice.customer_id, stage.value, now)
    if claim is not StageClaim.CLAIMED:
        logger.info("Notice not sent", invoice_id=invoice_id, stage=stage.value, why=claim.value)
        return {"sent": False, "why": claim.value}
    try:
        return _send_customer_notice(services, invoice_id, stage, now)
    except Exception:
        # The notice did not go out: give the stage back so that the retry sends it.
        services.invoices.release_stage(invoice_id, stage.value)
        raise


def stopped_since_claim(services: Services, invoice_id: str, now: datetime) -> str | None:
    """Why a stage claimed a moment ago must not act after all (a payment or dispute landed)."""
    invoice = services.invoices.require(invoice_id)
    if not invoice.is_open:
        return "settled"
    if invoice.dispute is not None:
        return "disputed"
    if invoice.promise is not None and invoice.promise.resume_at > now:
        return "promised"
    customer = services.customers.get(invoice.customer_id)
    if customer is not None and customer.pause is not None and customer.pause.until > now:
        return "paused"
    return None


def _send_customer_notice(
    services: Services, invoice_id: str, stage: Stage, now: datetime
) -> dict[str, Any]:
    invoice = services.invoices.require(invoice_id)
    customer = services.customers.get(invoice.customer_id)
    if customer is None:
        raise LookupError(f"customer {invoice.customer_id} of invoice {invoice_id} is missing")
    policy = services.policy()
    kind, event = CUSTOMER_NOTICE_FOR_STAGE[stage]
    open_invoices = [i for i in services.invoices.for_customer(customer.customer_id) if i.is_open]

    if not customer.email:
        return report_unreachable(services, invoice, customer, policy, kind, now)

    extra: dict[str, Any] = {}
    if kind is NoticeKind.FORMAL_NOTICE:
        extra = {"late_fee": policy.late_fee, "letter_reference": letter_reference(invoice, now)}
    context = notice_context(
        kind, invoice, customer, policy, now, open_invoices, services.settings.sender_email, **extra
    )
    renderer = renderer_for(services.templates_dir)
    rendered = renderer.render(context)

    attachments: list[tuple[str, str, bytes]] = []
    letter_key = None
    if kind is NoticeKind.FORMAL_NOTICE:
        letter = renderer.render_letter(context).encode()
        letter_key = f"letters/{invoice_id}/{context.letter_reference}.html"
        services.documents.put(letter_key, letter, "text/html; charset=utf-8")
        attachments.append((f"{context.letter_reference}.html", "text/html", letter))

    # NOTE: checked once more just before the e-mail goes: a payment landing in the instant
    # between this read and SES accepting the message can still cross it.
    place = services.history.reserve(now)
    stopped = stopped_since_claim(services, invoice_id, now)
    if stopped is not None:
        if stopped != "settled":
            services.invoices.release_stage(invoice_id, stage.value)
        return {"sent": False, "why": f"{stopped}_meanwhile"}

    domain = services.settings.sender_email.rsplit("@", 1)[-1]
    raw = build_email(
        rendered,
        services.settings.sender_email,
        customer.email,
        make_msgid(domain=domain),
        now,
        attachments,
    )
    message_id = services.mailer.send(services.settings.sender_email, customer.email, raw)
    detail: dict[str, Any] = {
        "to": customer.email,
        "language": context.locale,
        "subject": rendered.subject,
        "amount_outstanding": str(invoice.balance),
        "currency": invoice.currency,
        "due_date": invoice.due_date.isoformat(),
        "days_overdue": context.days_overdue,
        "message_id": message_id,
    }
    if letter_key:
        detail["letter_key"] = letter_key
    services.history.append(invoice_id, event, now, detail, invoice.customer_id, place)
    if stage is Stage.OVERDUE_NOTICE:
        # An overdue brings the customer's limit review forward.
        services.customers.review_now(invoice.customer_id, local_today(policy, now))
    logger.info("Notice sent", invoice_id=invoice_id, stage=stage.value, message_id=message_id)
    return {"sent": True, "message_id": message_id}


def letter_reference(invoice: InvoiceRecord, now: datetime) -> str:
    return f"FN-{now:%Y%m%d}-{invoice.invoice_id[-8:].upper()}"


def report_unreachable(
    services: Services,
    invoice: InvoiceRecord,
    customer: CustomerRecord,
    policy: Policy,
    notice: NoticeKind,
    now: datetime,
) -> dict[str, Any]:
    """No address to send to: finance hears "cannot reach the customer" instead of a failure."""
    context = notice_context(
        NoticeKind.CUSTOMER_UNREACHABLE,
        invoice,
        customer,
        policy,
        now,
        [],
        services.settings.sender_email,
        reason="no e-mail address on file",
        undelivered_notice=notice,
    )
    message_id = publish_to_finance(services, context)
    services.history.append(
        invoice.invoice_id,
        TimelineEvent.FINANCE_ESCALATED,
        now,
        {
            "reason": "customer_unreachable",
            "notice_not_sent": notice.value,
            "amount_outstanding": str(invoice.balance),
            "currency": invoice.currency,
            "message_id": message_id,
        },
        invoice.customer_id,
    )
    return {"sent": False, "why": "customer_unreachable", "message_id": message_id}


def publish_to_finance(services: Services, context: NoticeContext) -> str:
    rendered = renderer_for(services.templates_dir).render(context)
    return services.finance.publish(
        rendered.subject,
        rendered.text,
        {
            "kind": context.kind.value,
            "invoice_id": context.invoice_id,
            "customer_id": context.customer_id,
        },
    )


def escalate_to_finance(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    """A month overdue: finance gets the exposure and the history; legal action is referred."""
    owner = services.invoices.require(invoice_id).customer_id
    claim = services.invoices.claim_stage(invoice_id, owner, Stage.ESCALATION.value, now)
    if claim is not StageClaim.CLAIMED:
        return {"escalated": False, "why": claim.value}
    try:
        invoice = services.invoices.require(invoice_id)
        customer = services.customers.get(invoice.customer_id)
        if customer is None:
            raise LookupError(f"customer {invoice.customer_id} of invoice {invoice_id} is missing")
        policy = services.policy()
        open_invoices = [
            i for i in services.invoices.for_customer(customer.customer_id) if i.is_open
        ]
        exposure = sum((i.balance for i in open_invoices if i.currency == invoice.currency), 0)
        history = [
            HistoryLine(at=e.at, event=e.event.value, detail=summarise(e.detail))
            for e in services.history.for_invoice(invoice_id)
        ]
        context = notice_context(
            NoticeKind.FINANCE_ESCALATION,
            invoice,
            customer,
            policy,
            now,
            open_invoices,
            services.settings.sender_email,
            reason="invoice unpaid a month after its due date",
            exposure=exposure,
            credit_limit=customer.credit_limit,
            history=history,
            legal_referral=True,
        )
        place = services.history.reserve(now)
        stopped = stopped_since_claim(services, invoice_id, now)
        if stopped is not None:
            if stopped != "settled":
                services.invoices.release_stage(invoice_id, Stage.ESCALATION.value)
            return {"escalated": False, "why": f"{stopped}_meanwhile"}
        message_id = publish_to_finance(services, context)
    except Exception:
        services.invoices.release_stage(invoice_id, Stage.ESCALATION.value)
        raise
    services.history.append(
        invoice_id,
        TimelineEvent.FINANCE_ESCALATED,
        now,
        {
            "reason": "overdue",
            "days_overdue": context.days_overdue,
            "amount_outstanding": str(invoice.balance),
            "exposure": str(exposure),
            "currency": invoice.currency,
            "legal_referral": True,
            "message_id": message_id,
        },
        invoice.customer_id,
        place,
    )
    return {"escalated": True, "message_id": message_id}


def summarise(detail: dict[str, Any]) -> str:
    keys = ("amount", "amount_outstanding", "currency", "reason", "language", "reference")
    return ", ".join(f"{k}={detail[k]}" for k in keys if k in detail)
