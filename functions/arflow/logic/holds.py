"""Order holds: a customer is on hold while any reason stands, and released when none is left."""

from datetime import datetime

from aws_lambda_powertools import Logger

from arflow.models.records import HoldReason, InvoiceRecord, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")

INVOICE_OVERDUE = "invoice_overdue"
CREDIT_LIMIT_EXCEEDED = "credit_limit_exceeded"


def hold_key(reason: str, invoice_id: str | None) -> str:
    return f"{reason}#{invoice_id}" if invoice_id else reason


def place_hold(
    services: Services,
    customer_id: str,
    reason: str,
    invoice_id: str | None,
    now: datetime,
    place: str | None = None,
) -> bool:
    """Add one reason; the customer's hold goes on with the first. True if the reason is new."""
    before = services.customers.get(customer_id)
    was_on_hold = bool(before and before.on_hold)
    hold = HoldReason(reason=reason, invoice_id=invoice_id, placed_at=now)
    if not services.customers.place_hold(customer_id, hold_key(reason, invoice_id), hold):
        return False

    if invoice_id is not None:
        services.history.append(
            invoice_id,
            TimelineEvent.ORDER_HOLD_PLACED,
            now,
            {"reason": reason, "customer_id": customer_id, "already_on_hold": was_on_hold},
            customer_id,
            place,
        )
    services.hold_events.emit(
        "OrderHoldPlaced",
        {"customer_id": customer_id, "reason": reason, "invoice_id": invoice_id, "at": now},
        now,
    )
    logger.info("Order hold reason added", customer_id=customer_id, invoice_id=invoice_id)
    return True


def release_hold(
    services: Services, customer_id: str, reason: str, invoice_id: str | None, now: datetime
) -> bool:
    """Remove one reason; True when that released the customer's hold altogether."""
    removed, released = services.customers.release_hold(customer_id, hold_key(reason, invoice_id))
    if not removed:
        return False

    remaining = services.customers.get(customer_id)
    still = sorted(remaining.holds) if remaining else []
    if invoice_id is not None:
        services.history.append(
            invoice_id,
            TimelineEvent.ORDER_HOLD_RELEASED,
            now,
            {
                "reason": reason,
                "customer_id": customer_id,
                "customer_released": released,
                "remaining_reasons": still,
            },
            customer_id,
        )
    if released:
        services.hold_events.emit(
            "OrderHoldReleased",
            {"customer_id": customer_id, "reason": reason, "invoice_id": invoice_id, "at": now},
            now,
        )
    logger.info("Order hold reason removed", customer_id=customer_id, released=released)
    return released


def release_invoice_hold(services: Services, invoice: InvoiceRecord, now: datetime) -> bool:
    return release_hold(services, invoice.customer_id, INVOICE_OVERDUE, invoice.invoice_id, now)
