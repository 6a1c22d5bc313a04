"""Money received: apply it to its invoice once, settle the invoice, and end its dunning at once."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from arflow.dal.workflow import answer_token
from arflow.errors import PaymentRejectedError, UnknownInvoiceError
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
    status: str  # "applied", "duplicate"
    balance: Decimal
    settled: bool

    def body(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "invoice_id": self.invoice_id,
            "status": self.status,
            "balance": str(self.balance),
            "settled": self.settled,
        }


def receive_payment(services: Services, payment: Payment, now: datetime) -> PaymentResult:
    invoice_id = payment.invoice_id or document_id(
        payment.supplier_id or "", payment.invoice_number or ""
    )
    invoice = services.invoices.get(invoice_id)
    if invoice is None:
        raise UnknownInvoiceError(f"no invoice {payment.invoice_number or invoice_id} to apply to")
    if payment.currency != invoice.currency:
        raise PaymentRejectedError(
            f"payment is in {payment.currency} but invoice {invoice.invoice_number} is in "
            f"{invoice.currency}"
        )
    amount = quantize(payment.amount, invoice.currency)
    received_at = datetime.fromisoformat(payment.received_at) if payment.received_at else now

    first_time = services.payments.record(
        payment.payment_id,
        {
            "invoice_id": invoice_id,
            "amount": amount,
            "currency": payment.currency,
            "received_at": received_at,
            "method": payment.method,
        },
    )
    if not first_time:
        return PaymentResult(payment.payment_id, invoice_id, "duplicate", invoice.balance, False)

    # What the invoice no longer needs (over-payment, money after settlement) is customer credit.
    applied = min(amount, invoice.balance) if invoice.is_open else Decimal(0)
    updated = (
        services.invoices.reduce_balance(invoice_id, "amount_paid", applied) if applied else None
    )
    current = updated or invoice
    services.history.append(
        invoice_id,
        TimelineEvent.PAYMENT_RECEIVED,
        now,
        {
            "payment_id": payment.payment_id,
            "amount": str(amount),
            "currency": payment.currency,
            "balance": str(current.balance),
            **({"customer_credit": str(amount - applied)} if amount > applied else {}),
        },
        invoice.customer_id,
    )
    if amount > applied:
        services.customers.add_credit(invoice.customer_id, invoice.currency, amount - applied)
    settled = bool(updated and updated.balance <= 0) and settle(
        services, current, InvoiceStatus.PAID, now
    )
    logger.info("Payment applied", invoice_id=invoice_id, settled=settled)
    return PaymentResult(payment.payment_id, invoice_id, "applied", current.balance, settled)


def settle(
    services: Services, invoice: InvoiceRecord, status: InvoiceStatus, now: datetime
) -> bool:
    """Close an invoice whose balance reached zero: release its hold and wake its lifecycle."""
    if not services.invoices.settle(invoice.invoice_id, status):
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
