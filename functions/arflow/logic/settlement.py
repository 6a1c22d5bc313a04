"""Money received: apply it to its invoice once, settle the invoice, and end its dunning at once."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from arflow.dal.workflow import answer_token
from arflow.errors import PaymentRejectedError
from arflow.logic.credit import review_limit_holds
from arflow.logic.holds import release_invoice_hold
from arflow.models.invoice import Payment, document_id
from arflow.models.money import quantize
from arflow.models.records import InvoiceRecord, InvoiceStatus, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")


@dataclass(frozen=True)
class PaymentResult:
    payment_id: str
    invoice_id: str
    status: str  # "applied", "duplicate", "held"
    balance: Decimal | None
    settled: bool

    def body(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "invoice_id": self.invoice_id,
            "status": self.status,
            "balance": None if self.balance is None else str(self.balance),
            "settled": self.settled,
        }


def receive_payment(services: Services, payment: Payment, now: datetime) -> PaymentResult:
    invoice_id = payment.invoice_id or document_id(
        payment.supplier_id or "", payment.invoice_number or ""
    )
    received_at = datetime.fromisoformat(payment.received_at) if payment.received_at else now
    invoice = services.invoices.get(invoice_id)
    stored = {
        "invoice_id": invoice_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "amount_in_invoice_currency": payment.amount_in_invoice_currency,
        "received_at": received_at,
        "method": payment.method,
    }

    if invoice is None:
        # Money can arrive before its invoice: it is kept, and applied when the invoice arrives.
        first_time = services.payments.record(payment.payment_id, stored | {"status": "held"})
        status = "held" if first_time else "duplicate"
        logger.info("Payment held for its invoice", invoice_id=invoice_id)
        return PaymentResult(payment.payment_id, invoice_id, status, None, False)

    amount = amount_for(
        invoice, payment.amount, payment.currency, payment.amount_in_invoice_currency
    )
    if not services.payments.record(payment.payment_id, stored | {"status": "applied"}):
        return PaymentResult(payment.payment_id, invoice_id, "duplicate", invoice.balance, False)
    return apply_money(services, invoice, payment.payment_id, amount, now, {})


def amount_for(
    invoice: InvoiceRecord, amount: Decimal, currency: str, in_invoice_currency: Decimal | None
) -> Decimal:
    """What a payment is worth against this invoice, in its currency."""
    if currency == invoice.currency:
        return quantize(amount, invoice.currency)
    if in_invoice_currency is None:
        raise PaymentRejectedError(
            f"payment is in {currency} but invoice {invoice.invoice_number} is in "
            f"{invoice.currency}: send amount_in_invoice_currency as well"
        )
    return quantize(in_invoice_currency, invoice.currency)


def apply_held_payments(services: Services, invoice: InvoiceRecord, now: datetime) -> int:
    """Apply the payments that arrived before this invoice did."""
    applied = 0
    for held in sorted(services.payments.for_invoice(invoice.invoice_id), key=_received):
        if held.get("status") != "held":
            continue
        try:
            amount = amount_for(
                invoice, held["amount"], held["currency"], held.get("amount_in_invoice_currency")
            )
        except PaymentRejectedError:
            # NOTE: a held payment in another currency, with no amount in the invoice's currency,
            # stays held; it needs a person to say what it is worth.
            logger.warning("Held payment not applied: currency", invoice_id=invoice.invoice_id)
            continue
        if not services.payments.take_held(held["payment_id"]):
            continue
        current = services.invoices.require(invoice.invoice_id)
        held_since = held["received_at"]
        apply_money(services, current, held["payment_id"], amount, now, {"held_since": held_since})
        applied += 1
    return applied


def _received(item: dict[str, Any]) -> str:
    return str(item.get("received_at", ""))


def apply_money(
    services: Services,
    invoice: InvoiceRecord,
    payment_id: str,
    amount: Decimal,
    now: datetime,
    extra: dict[str, Any],
) -> PaymentResult:
    # What the invoice no longer needs (over-payment, money after settlement) is customer credit.
    applied = min(amount, invoice.balance) if invoice.is_open else Decimal(0)
    updated = (
        services.invoices.reduce_balance(invoice.invoice_id, "amount_paid", applied)
        if applied
        else None
    )
    current = updated or invoice
    if updated is not None:
        services.customers.reduce_exposure(invoice.customer_id, invoice.invoice_id, applied)
    excess = amount - applied
    services.history.append(
        invoice.invoice_id,
        TimelineEvent.PAYMENT_RECEIVED,
        now,
        {
            "payment_id": payment_id,
            "amount": str(amount),
            "currency": invoice.currency,
            "balance": str(current.balance),
            **({"customer_credit": str(excess)} if excess > 0 else {}),
            **extra,
        },
        invoice.customer_id,
    )
    if excess > 0:
        services.customers.add_credit(invoice.customer_id, invoice.currency, excess)
    settled = bool(updated and updated.balance <= 0) and settle(
        services, current, InvoiceStatus.PAID, now
    )
    logger.info("Payment applied", invoice_id=invoice.invoice_id, settled=settled)
    return PaymentResult(payment_id, invoice.invoice_id, "applied", current.balance, settled)


def settle(
    services: Services, invoice: InvoiceRecord, status: InvoiceStatus, now: datetime
) -> bool:
    """Close an invoice whose balance reached zero: release its hold and wake its lifecycle."""
    if not services.invoices.settle(invoice.invoice_id, status, now):
        return False
    services.history.append(
        invoice.invoice_id,
        TimelineEvent.INVOICE_SETTLED,
        now,
        {"status": status.value, "currency": invoice.currency},
        invoice.customer_id,
    )
    release_invoice_hold(services, invoice, now)
    review_limit_holds(services, invoice.customer_id, invoice.currency, now)
    token = services.invoices.take_token(invoice.invoice_id)
    if token is not None:
        answer_token(services.settings.region, token, {"outcome": status.value})
    return True
