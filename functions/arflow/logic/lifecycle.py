"""The lifecycle's own steps: plan what comes next, park until then, record how it ended."""

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from arflow.dal.workflow import answer_token
from arflow.logic.dunning import notice_context, publish_to_finance
from arflow.logic.holds import INVOICE_OVERDUE, place_hold, release_hold
from arflow.logic.schedule import next_step
from arflow.models.notice import NoticeKind
from arflow.models.records import InvoiceRecord, Outcome, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")


def plan(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    invoice = services.invoices.require(invoice_id)
    customer = services.customers.get(invoice.customer_id)
    pause = customer.pause if customer else None
    policy = services.policy()
    step = next_step(invoice, policy, now, pause)
    if step.promise_broken and invoice.promise is not None:
        break_promise(services, invoice, now)
        invoice = services.invoices.require(invoice_id)
        step = next_step(invoice, policy, now, pause)

    # The history says when dunning stopped and started again, whatever stopped it.
    if step.outcome is None and services.invoices.mark_paused(invoice_id, step.paused):
        event = TimelineEvent.DUNNING_PAUSED if step.paused else TimelineEvent.DUNNING_RESUMED
        detail: dict[str, Any] = {"reason": step.paused or invoice.paused}
        if step.paused == "customer_pause" and pause is not None:
            detail["until"] = pause.until.isoformat()
        services.history.append(invoice_id, event, now, detail, invoice.customer_id)
    if step.skipped:
        services.invoices.skip_stages(invoice_id, [s.value for s in step.skipped])
    logger.info(
        "Next step planned",
        invoice_id=invoice_id,
        stage=step.stage.value if step.stage else None,
        outcome=step.outcome.value if step.outcome else None,
    )
    return {
        "outcome": step.outcome.value if step.outcome else None,
        "stage": step.stage.value if step.stage else None,
        "due_at": step.due_at.strftime("%Y-%m-%dT%H:%M:%SZ") if step.due_at else None,
        "due_now": step.due_now,
        "wait_seconds": step.wait_seconds,
        "skipped": [s.value for s in step.skipped],
    }


def break_promise(services: Services, invoice: InvoiceRecord, now: datetime) -> None:
    """The promised date passed with the invoice still open: finance hears, the ladder resumes."""
    promise = invoice.promise
    if promise is None or not services.invoices.clear_promise(invoice.invoice_id, promise):
        return
    customer = services.customers.get(invoice.customer_id)
    message_id = None
    if customer is not None:
        context = notice_context(
            NoticeKind.FINANCE_ESCALATION,
            invoice,
            customer,
            services.policy(),
            now,
            [],
            services.settings.sender_email,
            reason=f"the customer promised to pay by {promise.pay_by.isoformat()} and has not",
        )
        message_id = publish_to_finance(services, context)
    services.history.append(
        invoice.invoice_id,
        TimelineEvent.PROMISE_BROKEN,
        now,
        {
            "pay_by": promise.pay_by.isoformat(),
            "amount_outstanding": str(invoice.balance),
            "currency": invoice.currency,
            "message_id": message_id,
        },
        invoice.customer_id,
    )


def park(services: Services, invoice_id: str, task_token: str) -> dict[str, Any]:
    """Keep the token a payment answers. Settled in the meantime: answer it now ourselves."""
    if services.invoices.park(invoice_id, task_token):
        return {"parked": True}
    answer_token(services.settings.region, task_token, {"outcome": "settled"})
    return {"parked": False}


def end(services: Services, invoice_id: str, outcome: Outcome, now: datetime) -> dict[str, Any]:
    invoice = services.invoices.require(invoice_id)
    if services.invoices.end(invoice_id, outcome):
        services.history.append(
            invoice_id,
            TimelineEvent.LIFECYCLE_ENDED,
            now,
            {
                "outcome": outcome.value,
                "balance": str(invoice.balance),
                "currency": invoice.currency,
                "stages": sorted(invoice.stages),
                "skipped_stages": invoice.skipped_stages,
            },
            invoice.customer_id,
        )
    return {"outcome": outcome.value}


def fail(
    services: Services, invoice_id: str, error: str, cause: str, now: datetime
) -> dict[str, Any]:
    invoice = services.invoices.require(invoice_id)
    if services.invoices.end(invoice_id, Outcome.FAILED):
        services.history.append(
            invoice_id,
            TimelineEvent.LIFECYCLE_ENDED,
            now,
            {"outcome": Outcome.FAILED.value, "error": error, "cause": cause[:500]},
            invoice.customer_id,
        )
    return {"outcome": Outcome.FAILED.value}


def hold_new_orders(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    """The overdue invoice holds the customer's new orders, unless dunning has stopped for it."""
    invoice = services.invoices.require(invoice_id)
    place = services.history.reserve(now)
    why_not = _no_hold_because(services, invoice, now)
    if why_not:
        return {"placed": False, "why": why_not}
    placed = place_hold(services, invoice.customer_id, INVOICE_OVERDUE, invoice_id, now, place)

    # A payment or a dispute may have landed while the hold was written: undo it then.
    if placed:
        why_not = _no_hold_because(services, services.invoices.require(invoice_id), now)
        if why_not:
            release_hold(services, invoice.customer_id, INVOICE_OVERDUE, invoice_id, now)
            return {"placed": False, "why": f"{why_not}_meanwhile"}
    return {"placed": placed}


def _no_hold_because(services: Services, invoice: InvoiceRecord, now: datetime) -> str | None:
    if not invoice.is_open:
        return "not_open"
    if invoice.dispute is not None:
        return "disputed"
    customer = services.customers.get(invoice.customer_id)
    if customer is not None and customer.pause is not None and customer.pause.until > now:
        return "paused"
    return None
