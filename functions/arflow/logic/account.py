"""What a credit controller does to an account: disputes, promises to pay, pauses, write-offs.

Each takes effect at once for every later step: the stage claims check for them in the same
transaction that takes a stage, and ending one wakes the invoice's lifecycle to plan again.
"""

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from arflow.dal.workflow import answer_token
from arflow.errors import (
    ArflowError,
    InvalidRequestError,
    UnknownCustomerError,
    UnknownInvoiceError,
)
from arflow.logic.holds import release_invoice_hold
from arflow.models.records import Dispute, InvoiceRecord, Pause, Promise, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")


class InvoiceNotOpenError(ArflowError):
    """The action needs an open invoice; this one is settled, written off or disputed already."""

    http_status = 409


def _open_invoice(services: Services, invoice_id: str) -> InvoiceRecord:
    invoice = services.invoices.get(invoice_id)
    if invoice is None:
        raise UnknownInvoiceError(f"no invoice {invoice_id}")
    if not invoice.is_open:
        raise InvoiceNotOpenError(f"invoice {invoice.invoice_number} is {invoice.status.value}")
    return invoice


def wake(services: Services, invoice_id: str, why: str) -> bool:
    """Answer the parked lifecycle so that it plans again now."""
    token = services.invoices.take_token(invoice_id)
    return token is not None and answer_token(services.settings.region, token, {"woken": why})


def open_dispute(
    services: Services, invoice_id: str, reason: str, by: str | None, now: datetime
) -> dict[str, Any]:
    invoice = _open_invoice(services, invoice_id)
    if not services.invoices.open_dispute(
        invoice_id, Dispute(reason=reason, opened_at=now, opened_by=by)
    ):
        raise InvoiceNotOpenError(f"invoice {invoice.invoice_number} is already disputed")
    services.history.append(
        invoice_id,
        TimelineEvent.DISPUTE_OPENED,
        now,
        {"reason": reason, "by": by, "insurable": False},
        invoice.customer_id,
    )
    services.history.append(
        invoice_id, TimelineEvent.DUNNING_PAUSED, now, {"reason": "dispute"}, invoice.customer_id
    )
    logger.info("Dispute opened", invoice_id=invoice_id)
    return {"invoice_id": invoice_id, "status": "disputed"}


def resolve_dispute(
    services: Services, invoice_id: str, resolution: str, by: str | None, now: datetime
) -> dict[str, Any]:
    invoice = services.invoices.get(invoice_id)
    if invoice is None:
        raise UnknownInvoiceError(f"no invoice {invoice_id}")
    dispute = services.invoices.resolve_dispute(invoice_id)
    if dispute is None:
        raise InvoiceNotOpenError(f"invoice {invoice.invoice_number} has no open dispute")
    services.history.append(
        invoice_id,
        TimelineEvent.DISPUTE_RESOLVED,
        now,
        {"resolution": resolution, "by": by, "opened_at": dispute.opened_at.isoformat()},
        invoice.customer_id,
    )
    services.history.append(
        invoice_id, TimelineEvent.DUNNING_RESUMED, now, {"reason": "dispute"}, invoice.customer_id
    )
    wake(services, invoice_id, "dispute_resolved")
    return {"invoice_id": invoice_id, "status": "resolved"}


def record_promise(
    services: Services, invoice_id: str, pay_by: date, by: str | None, now: datetime
) -> dict[str, Any]:
    """The next notice waits until the day after the promised date, at the usual send hour."""
    invoice = _open_invoice(services, invoice_id)
    policy = services.policy()
    local = datetime.combine(
        pay_by + timedelta(days=1), time(policy.send_hour), tzinfo=ZoneInfo(policy.timezone)
    )
    promise = Promise(pay_by=pay_by, recorded_at=now, resume_at=local.astimezone(ZoneInfo("UTC")))
    if promise.resume_at <= now:
        raise InvalidRequestError(f"a promise to pay by {pay_by.isoformat()} is already past")
    services.invoices.record_promise(invoice_id, promise)
    services.history.append(
        invoice_id,
        TimelineEvent.PROMISE_RECORDED,
        now,
        {"pay_by": pay_by.isoformat(), "by": by, "resume_at": promise.resume_at.isoformat()},
        invoice.customer_id,
    )
    # The lifecycle may be waiting for a stage due before the promise runs out.
    wake(services, invoice_id, "promise_recorded")
    return {"invoice_id": invoice_id, "status": "promised", "resume_at": promise.resume_at}


def pause_customer(
    services: Services,
    customer_id: str,
    reason: str,
    until: datetime,
    by: str | None,
    now: datetime,
) -> dict[str, Any]:
    if until <= now:
        raise InvalidRequestError("a pause must end in the future")
    pause = Pause(reason=reason, until=until, paused_at=now, paused_by=by)
    if not services.customers.set_pause(customer_id, pause):
        raise UnknownCustomerError(f"no customer {customer_id}")
    paused = []
    for invoice in services.invoices.for_customer(customer_id):
        if invoice.is_open and services.invoices.mark_paused(invoice.invoice_id, "customer_pause"):
            services.history.append(
                invoice.invoice_id,
                TimelineEvent.DUNNING_PAUSED,
                now,
                {"reason": "customer_pause", "note": reason, "until": until.isoformat()},
                customer_id,
            )
            paused.append(invoice.invoice_id)
    return {"customer_id": customer_id, "status": "paused", "invoices": paused}


def end_customer_pause(services: Services, customer_id: str, now: datetime) -> dict[str, Any]:
    if not services.customers.end_pause(customer_id):
        raise UnknownCustomerError(f"customer {customer_id} has no pause to end")
    resumed = []
    for invoice in services.invoices.for_customer(customer_id):
        if invoice.paused == "customer_pause" and services.invoices.mark_paused(
            invoice.invoice_id, None
        ):
            services.history.append(
                invoice.invoice_id,
                TimelineEvent.DUNNING_RESUMED,
                now,
                {"reason": "customer_pause"},
                customer_id,
            )
            wake(services, invoice.invoice_id, "pause_ended")
            resumed.append(invoice.invoice_id)
    return {"customer_id": customer_id, "status": "resumed", "invoices": resumed}


def write_off(
    services: Services, invoice_id: str, reason: str, by: str | None, now: datetime
) -> dict[str, Any]:
    """Close an invoice as uncollectible: no more dunning, its hold reason goes."""
    invoice = _open_invoice(services, invoice_id)
    closed = services.invoices.write_off(invoice_id, reason)
    if closed is None:
        raise InvoiceNotOpenError(f"invoice {invoice.invoice_number} is no longer open")
    services.history.append(
        invoice_id,
        TimelineEvent.WRITTEN_OFF,
        now,
        {
            "reason": reason,
            "by": by,
            "amount": str(closed.balance),
            "currency": closed.currency,
        },
        invoice.customer_id,
    )
    services.customers.reduce_exposure(closed.customer_id, invoice_id, closed.balance)
    release_invoice_hold(services, closed, now)
    wake(services, invoice_id, "written_off")
    return {"invoice_id": invoice_id, "status": "written_off", "amount": str(closed.balance)}
