"""The credit check when an invoice arrives: exposure against the customer's limit."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from arflow.logic.dunning import notice_context, publish_to_finance
from arflow.logic.holds import CREDIT_LIMIT_EXCEEDED, place_hold, release_hold
from arflow.models.notice import NoticeKind
from arflow.models.records import CustomerRecord, InvoiceRecord, TimelineEvent
from arflow.services import Services

logger = Logger(service="arflow")

APPROVED = "approved"
LIMIT_EXCEEDED = "limit_exceeded"
REFERRED = "referred"


def exposure_of(invoices: list[InvoiceRecord], currency: str) -> Decimal:
    return sum((i.balance for i in invoices if i.is_open and i.currency == currency), Decimal(0))


def decide(customer: CustomerRecord, exposure: Decimal, currency: str) -> tuple[str, str]:
    if customer.credit_limit is None:
        return REFERRED, "no credit limit has been set"
    if customer.credit_currency not in (None, currency):
        # NOTE: limits are kept in one currency; exposure in another is referred, not converted.
        return REFERRED, f"the limit is in {customer.credit_currency}, the invoice in {currency}"
    if exposure > customer.credit_limit:
        return LIMIT_EXCEEDED, "exposure with this invoice is over the credit limit"
    return APPROVED, "exposure is within the credit limit"


def check_credit(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    # NOTE: the assessment uses the customer's limit and open exposure only; external credit
    # reports, payment behaviour and industry/country outlook are not scored yet.
    invoice = services.invoices.require(invoice_id)
    customer = services.customers.get(invoice.customer_id)
    if customer is None:
        raise LookupError(f"customer {invoice.customer_id} of invoice {invoice_id} is missing")
    policy = services.policy()
    invoices = services.invoices.for_customer(customer.customer_id)
    exposure = exposure_of(invoices, invoice.currency)
    decision, reason = decide(customer, exposure, invoice.currency)
    first_invoice = len(invoices) == 1

    services.history.append(
        invoice_id,
        TimelineEvent.CREDIT_CHECKED,
        now,
        {
            "decision": decision,
            "reason": reason,
            "exposure": str(exposure),
            "credit_limit": str(customer.credit_limit) if customer.credit_limit else None,
            "currency": invoice.currency,
            "new_customer": first_invoice,
            "review_due": customer.review_due.isoformat() if customer.review_due else None,
            "policy_version": policy.version,
        },
        customer.customer_id,
    )
    if decision != APPROVED:
        context = notice_context(
            NoticeKind.CREDIT_ALERT,
            invoice,
            customer,
            policy,
            now,
            [],
            services.settings.sender_email,
            reason=reason,
            exposure=exposure,
            credit_limit=customer.credit_limit,
        )
        publish_to_finance(services, context)
    if decision == LIMIT_EXCEEDED:
        place_hold(services, customer.customer_id, CREDIT_LIMIT_EXCEEDED, invoice_id, now)
    logger.info("Credit checked", invoice_id=invoice_id, decision=decision)
    return {"decision": decision, "exposure": str(exposure)}


def review_limit_holds(services: Services, customer_id: str, currency: str, now: datetime) -> None:
    """Lift credit-limit holds once the customer's exposure is back within its limit."""
    customer = services.customers.get(customer_id)
    if customer is None or customer.credit_limit is None:
        return
    exposure = exposure_of(services.invoices.for_customer(customer_id), currency)
    if exposure > customer.credit_limit:
        return
    for key, hold in list(customer.holds.items()):
        if hold.reason == CREDIT_LIMIT_EXCEEDED and key.startswith(CREDIT_LIMIT_EXCEEDED):
            release_hold(services, customer_id, CREDIT_LIMIT_EXCEEDED, hold.invoice_id, now)
