"""Credit decisions: the check when an invoice arrives, scheduled limit reviews, and overrides.

Every decision takes three kinds of evidence (an external credit report, the buyer's own payment
record, and its industry and country outlook), is scored by the policy, is stored with its inputs
and reasons in the decision log, and appears in the timeline.
"""

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from arflow.config import environment
from arflow.dal.aws import client
from arflow.dal.credit_reports import (
    ProviderUnavailableError,
    ReportNotFoundError,
    ReportRequest,
    provider_from_env,
)
from arflow.logic.dunning import notice_context, publish_to_finance
from arflow.logic.holds import CREDIT_LIMIT_EXCEEDED, place_hold, release_hold
from arflow.logic.scoring import (
    OutlookTable,
    SettledInvoiceFacts,
    assess,
    behaviour_from_history,
    default_outlook_table,
    load_outlook_table,
    report_is_stale,
    review_limit,
)
from arflow.models.credit import CreditDecision, CreditReport, DecisionKind, Grade, LimitReview
from arflow.models.notice import NoticeKind
from arflow.models.policy import Policy
from arflow.models.records import (
    CustomerRecord,
    DecisionSummary,
    InvoiceRecord,
    TimelineEvent,
    customer_timeline_id,
)
from arflow.services import Services

logger = Logger(service="arflow")

CREDIT_DECLINED = "credit_declined"
COLLATERAL_REQUIRED = "collateral_required"
CREDIT_REFERRED = "credit_referred"
# Holds a credit decision places, and that a later decision or an override can lift.
DECISION_HOLDS = {
    DecisionKind.DECLINE: CREDIT_DECLINED,
    DecisionKind.APPROVE_WITH_COLLATERAL: COLLATERAL_REQUIRED,
    DecisionKind.REFER: CREDIT_REFERRED,
}


@lru_cache(maxsize=8)
def _outlook(csv_text: str | None) -> OutlookTable:
    if csv_text is None:
        return default_outlook_table()
    return load_outlook_table(csv_text, "the policy's outlook table")


def exposure_of(invoices: list[InvoiceRecord], currency: str) -> Decimal:
    return sum((i.balance for i in invoices if i.is_open and i.currency == currency), Decimal(0))


def _today(policy: Policy, now: datetime) -> date:
    return now.astimezone(ZoneInfo(policy.timezone)).date()


def current_report(
    services: Services, customer: CustomerRecord, policy: Policy, today: date
) -> tuple[CreditReport | None, str | None]:
    """The customer's report, refreshed when missing or older than the policy allows."""
    if not report_is_stale(customer.credit_report, today, policy.scoring):
        return customer.credit_report, None
    provider = provider_from_env(
        environment(),
        client("dynamodb", services.settings.region),
        client("secretsmanager", services.settings.region),
    )
    request = ReportRequest(
        customer_id=customer.customer_id,
        name=customer.name,
        country=customer.country,
        vat_id=customer.vat_id,
    )
    try:
        report = provider.fetch(request)
    except ReportNotFoundError:
        return None, NO_REPORT
    except ProviderUnavailableError as error:
        # An outage never approves: the decision is referred, and the reason says why.
        return None, f"the credit provider is unavailable: {error}"
    services.customers.set_report(customer.customer_id, report)
    return report, None


def _assessment(
    services: Services,
    customer: CustomerRecord,
    policy: Policy,
    now: datetime,
    currency: str,
    exposure: Decimal,
) -> CreditDecision:
    today = _today(policy, now)
    report, provider_error = current_report(services, customer, policy, today)
    invoices = services.invoices.for_customer(customer.customer_id)
    facts = [
        SettledInvoiceFacts(
            invoice_id=i.invoice_id,
            issue_date=i.issue_date,
            due_date=i.due_date,
            settled_on=i.settled_at.astimezone(ZoneInfo(policy.timezone)).date()
            if i.settled_at
            else None,
            balance=i.balance if i.is_open else Decimal(0),
            currency=i.currency,
        )
        for i in invoices
        if i.document.document_type.value == "invoice" and not i.document.is_credit
    ]
    behaviour = behaviour_from_history(facts, today, policy.scoring.behaviour_window_days, currency)
    outlook = _outlook(policy.outlook_csv).lookup(customer.industry_code, customer.country)
    decision = assess(
        report,
        behaviour,
        outlook,
        exposure,
        customer.credit_limit,
        customer.last_decision is None,
        policy.credit.new_customer_limit,
        policy.scoring,
        policy.version,
        now,
        provider_error,
    )
    if report is None and provider_error == NO_REPORT and policy.credit.unrated_buyer_limit:
        return _unrated(decision, policy, customer)
    return decision


NO_REPORT = "the credit provider has no report on this company"


def _unrated(decision: CreditDecision, policy: Policy, customer: CustomerRecord) -> CreditDecision:
    """No report exists (not an outage): the policy's own limit for unrated buyers applies."""
    allowed = policy.credit.unrated_buyer_limit or Decimal(0)
    if customer.last_decision is None:
        allowed = min(allowed, policy.credit.new_customer_limit)
    limit = allowed if customer.credit_limit is None else min(allowed, customer.credit_limit)
    exposure = decision.inputs.exposure_after_invoice
    reasons = [
        f"decision: approve an unrated buyer up to {decision.currency} {limit} (the policy's "
        "limit for buyers without a credit report)",
        *decision.reasons[1:],
    ]
    return decision.model_copy(
        update={
            "kind": DecisionKind.APPROVE,
            "credit_limit": limit,
            "exposure_over_limit": exposure > limit,
            "reasons": reasons,
        }
    )


def _summary(decision: CreditDecision, limit: Decimal, source: str) -> DecisionSummary:
    return DecisionSummary(
        kind=decision.kind.value,
        grade=decision.grade.value if decision.grade else None,
        score=decision.score,
        credit_limit=limit,
        currency=decision.currency,
        decided_at=decision.decided_at,
        source=source,
    )


def check_credit(services: Services, invoice_id: str, now: datetime) -> dict[str, Any]:
    invoice = services.invoices.require(invoice_id)
    customer = services.customers.get(invoice.customer_id)
    if customer is None:
        raise LookupError(f"customer {invoice.customer_id} of invoice {invoice_id} is missing")
    policy = services.policy()
    already = customer.exposure_invoices.get(invoice_id, Decimal(0))
    # Orders not yet invoiced count too, when the order system reports them.
    orders = customer.open_orders if customer.credit_currency == invoice.currency else Decimal(0)
    exposure_after = customer.exposure - already + invoice.balance + orders
    decision = _assessment(services, customer, policy, now, invoice.currency, exposure_after)

    # The first decision sets the buyer's first limit and its review three months on.
    first = customer.last_decision is None
    limit = decision.credit_limit
    review_due = None
    if first:
        review_due = date.fromordinal(
            _today(policy, now).toordinal() + policy.credit.review_after_days
        )
    services.customers.set_credit(
        customer.customer_id,
        limit,
        decision.currency,
        _summary(decision, limit, "assessment"),
        review_due,
        decision.payment_terms_days,
    )
    within = services.customers.reserve_exposure(
        customer.customer_id, invoice_id, invoice.balance, limit, orders
    )
    services.credit_decisions.record(
        customer.customer_id,
        "assessment",
        now,
        {"invoice_id": invoice_id, "decision": decision.model_dump(mode="json")},
    )

    alerted = _alert_finance(services, customer, invoice, decision, within, now)
    services.history.append(
        invoice_id,
        TimelineEvent.CREDIT_CHECKED,
        now,
        {
            "decision": decision.kind.value,
            "grade": decision.grade.value if decision.grade else None,
            "score": decision.score,
            "credit_limit": str(limit),
            "exposure": str(exposure_after),
            "open_orders": str(orders),
            "currency": decision.currency,
            "within_limit": within,
            "new_customer": first,
            "payment_terms_days": decision.payment_terms_days,
            "collateral_required": decision.collateral_required,
            "report": decision.inputs.report.reference if decision.inputs.report else None,
            "provider_error": decision.inputs.provider_error,
            "reasons": decision.reasons,
            "policy_version": policy.version,
            **({"finance_message_id": alerted} if alerted else {}),
        },
        customer.customer_id,
    )
    if first or customer.credit_limit != limit:
        _limit_changed(services, customer, customer.credit_limit, limit, decision, now, first)
    _place_holds(services, customer, invoice, decision, within, now)
    logger.info("Credit checked", invoice_id=invoice_id, decision=decision.kind.value)
    return {"decision": decision.kind.value, "within_limit": within, "credit_limit": str(limit)}


def _limit_changed(
    services: Services,
    customer: CustomerRecord,
    old: Decimal | None,
    new: Decimal,
    decision: CreditDecision,
    now: datetime,
    first: bool,
) -> None:
    services.history.append(
        customer_timeline_id(customer.customer_id),
        TimelineEvent.CREDIT_LIMIT_CHANGED,
        now,
        {
            "customer_id": customer.customer_id,
            "old_limit": None if old is None else str(old),
            "new_limit": str(new),
            "currency": decision.currency,
            "why": "first assessment" if first else decision.reasons[0],
        },
        customer.customer_id,
    )


def _place_holds(
    services: Services,
    customer: CustomerRecord,
    invoice: InvoiceRecord,
    decision: CreditDecision,
    within: bool,
    now: datetime,
) -> None:
    """The holds a decision calls for: declined, collateral, referred, over the limit."""
    hold = DECISION_HOLDS.get(decision.kind)
    # An established customer referred (say, during a provider outage) keeps its credit.
    if decision.kind is DecisionKind.REFER and customer.last_decision is not None:
        hold = None
    if hold is not None:
        place_hold(services, customer.customer_id, hold, invoice.invoice_id, now)
    if not within:
        place_hold(services, customer.customer_id, CREDIT_LIMIT_EXCEEDED, invoice.invoice_id, now)


def _alert_finance(
    services: Services,
    customer: CustomerRecord,
    invoice: InvoiceRecord,
    decision: CreditDecision,
    within: bool,
    now: datetime,
) -> str | None:
    """Finance hears of every decision that is not a plain approval within the limit."""
    if decision.kind is DecisionKind.APPROVE and within:
        return None
    reason = decision.reasons[0]
    if not within:
        reason = f"{reason}; with this invoice the exposure is over the credit limit"
    context = notice_context(
        NoticeKind.CREDIT_ALERT,
        invoice,
        customer,
        services.policy(),
        now,
        [],
        services.settings.sender_email,
        reason=reason,
        exposure=decision.inputs.exposure_after_invoice,
        credit_limit=decision.credit_limit,
    )
    return publish_to_finance(services, context)


def review_limit_holds(services: Services, customer_id: str, currency: str, now: datetime) -> None:
    """Lift credit-limit holds once the customer's exposure is back within its limit."""
    customer = services.customers.get(customer_id)
    if customer is None or customer.credit_limit is None:
        return
    if customer.exposure > customer.credit_limit:
        return
    for hold in list(customer.holds.values()):
        if hold.reason == CREDIT_LIMIT_EXCEEDED:
            release_hold(services, customer_id, CREDIT_LIMIT_EXCEEDED, hold.invoice_id, now)


def review_customer(services: Services, customer_id: str, now: datetime) -> LimitReview | None:
    """A scheduled review: raise, keep or lower the limit on fresh evidence, and record why."""
    customer = services.customers.get(customer_id)
    if customer is None or customer.credit_limit is None or customer.credit_currency is None:
        return None
    policy = services.policy()
    decision = _assessment(
        services, customer, policy, now, customer.credit_currency, customer.exposure
    )
    previous = customer.last_decision.grade if customer.last_decision else None
    review = review_limit(
        customer_id,
        customer.credit_limit,
        decision,
        Grade(previous) if previous else None,
        policy.scoring,
        policy.credit.review_after_days,
        now,
    )
    services.customers.set_credit(
        customer_id,
        review.new_limit,
        review.currency,
        _summary(decision, review.new_limit, "review"),
        review.next_review_on,
    )
    services.credit_decisions.record(
        customer_id,
        "review",
        now,
        {"review": review.model_dump(mode="json"), "decision": decision.model_dump(mode="json")},
    )
    timeline_id = customer_timeline_id(customer_id)
    services.history.append(
        timeline_id,
        TimelineEvent.CREDIT_REVIEW_COMPLETED,
        now,
        {
            "customer_id": customer_id,
            "direction": review.direction,
            "old_limit": str(review.old_limit),
            "new_limit": str(review.new_limit),
            "currency": review.currency,
            "grade": decision.grade.value if decision.grade else None,
            "reasons": review.reasons,
            "next_review_on": review.next_review_on.isoformat(),
            "policy_version": policy.version,
        },
        customer_id,
    )
    if review.new_limit != review.old_limit:
        services.history.append(
            timeline_id,
            TimelineEvent.CREDIT_LIMIT_CHANGED,
            now,
            {
                "customer_id": customer_id,
                "old_limit": str(review.old_limit),
                "new_limit": str(review.new_limit),
                "currency": review.currency,
                "why": review.reasons[0] if review.reasons else review.direction,
            },
            customer_id,
        )
    review_limit_holds(services, customer_id, review.currency, now)
    logger.info("Credit review completed", customer_id=customer_id, direction=review.direction)
    return review


def report_open_orders(
    services: Services, customer_id: str, amount: Decimal, by: str | None, now: datetime
) -> dict[str, Any]:
    """The order system's figure for orders accepted but not yet invoiced."""
    from arflow.errors import UnknownCustomerError

    if not services.customers.set_open_orders(customer_id, amount):
        raise UnknownCustomerError(f"no customer {customer_id}")
    services.credit_decisions.record(
        customer_id, "open_orders", now, {"open_orders": str(amount), "by": by}
    )
    customer = services.customers.get(customer_id)
    exposure = (customer.exposure if customer else Decimal(0)) + amount
    return {"customer_id": customer_id, "open_orders": str(amount), "exposure": str(exposure)}


def review_due_customers(services: Services, now: datetime) -> list[str]:
    """Every customer whose review is due today or earlier (the scheduled job)."""
    today = _today(services.policy(), now)
    reviewed = []
    for customer in services.customers.due_for_review(today):
        if review_customer(services, customer.customer_id, now) is not None:
            reviewed.append(customer.customer_id)
    return reviewed


def override(
    services: Services,
    customer_id: str,
    credit_limit: Decimal | None,
    lift_holds: bool,
    reason: str,
    by: str,
    now: datetime,
) -> dict[str, Any]:
    """A credit controller sets the limit, or lifts the credit holds, and says why."""
    customer = services.customers.get(customer_id)
    if customer is None:
        from arflow.errors import UnknownCustomerError

        raise UnknownCustomerError(f"no customer {customer_id}")
    currency = customer.credit_currency or "EUR"
    limit = customer.credit_limit if credit_limit is None else credit_limit
    if limit is not None:
        summary = DecisionSummary(
            kind="override",
            credit_limit=limit,
            currency=currency,
            decided_at=now,
            source="override",
        )
        services.customers.set_credit(customer_id, limit, currency, summary)
    lifted = []
    if lift_holds:
        for hold in list(customer.holds.values()):
            if hold.reason in DECISION_HOLDS.values():
                release_hold(services, customer_id, hold.reason, hold.invoice_id, now)
                lifted.append(hold.reason)
    services.credit_decisions.record(
        customer_id,
        "override",
        now,
        {"credit_limit": limit, "lifted": lifted, "reason": reason, "by": by},
    )
    services.history.append(
        customer_timeline_id(customer_id),
        TimelineEvent.CREDIT_OVERRIDE,
        now,
        {
            "customer_id": customer_id,
            "old_limit": None if customer.credit_limit is None else str(customer.credit_limit),
            "new_limit": None if limit is None else str(limit),
            "currency": currency,
            "holds_lifted": lifted,
            "reason": reason,
            "by": by,
        },
        customer_id,
    )
    review_limit_holds(services, customer_id, currency, now)
    return {"customer_id": customer_id, "credit_limit": limit, "holds_lifted": lifted}
