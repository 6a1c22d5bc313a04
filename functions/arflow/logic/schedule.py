"""When things are due: the due date of an invoice, and the next stage of its dunning ladder."""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from arflow.models.invoice import InvoiceDocument
from arflow.models.policy import STAGE_ORDER, Policy, Stage
from arflow.models.records import DueDateSource, InvoiceRecord, InvoiceStatus, Outcome, Pause

# While disputed, the lifecycle looks again this often even if nobody resolves the dispute.
DISPUTE_RECHECK_SECONDS = 30 * 86400


def resolve_due_date(
    document: InvoiceDocument, customer_terms_days: int | None, policy: Policy
) -> tuple[date, DueDateSource]:
    """The invoice's due date, else its payment terms, else the customer's, else the policy's."""
    if document.due_date is not None:
        return document.due_date, DueDateSource.INVOICE
    if document.payment_terms_days is not None:
        return (
            document.issue_date + timedelta(days=document.payment_terms_days),
            DueDateSource.PAYMENT_TERMS,
        )
    if customer_terms_days is not None:
        return document.issue_date + timedelta(
            days=customer_terms_days
        ), DueDateSource.CUSTOMER_TERMS
    return (
        document.issue_date + timedelta(days=policy.default_payment_terms_days),
        DueDateSource.POLICY_DEFAULT,
    )


def ladder(invoice: InvoiceRecord, policy: Policy) -> list[tuple[Stage, datetime]]:
    """The stages this invoice goes through and when each falls due (the claim only if insured)."""
    stages = [s for s in STAGE_ORDER if s is not Stage.CLAIM or invoice.insured]
    return [(stage, policy.stage_at(stage, invoice.due_date)) for stage in stages]


@dataclass(frozen=True)
class NextStep:
    """What the state machine does next: end, run a stage now, or wait for one."""

    outcome: Outcome | None = None
    stage: Stage | None = None
    due_at: datetime | None = None
    wait_seconds: int = 0
    skipped: tuple[Stage, ...] = ()
    paused: str | None = None  # "dispute", "promise", "customer_pause": why nothing goes out now
    promise_broken: bool = False

    @property
    def due_now(self) -> bool:
        return self.outcome is None and self.stage is not None and self.wait_seconds == 0


_ENDED = {
    InvoiceStatus.PAID: Outcome.PAID,
    InvoiceStatus.CREDITED: Outcome.CREDITED,
    InvoiceStatus.WRITTEN_OFF: Outcome.WRITTEN_OFF,
}


def _seconds_until(instant: datetime, now: datetime) -> int:
    return max(1, math.ceil((instant - now).total_seconds()))


def next_step(
    invoice: InvoiceRecord, policy: Policy, now: datetime, customer_pause: Pause | None = None
) -> NextStep:
    if invoice.outcome is not None:
        return NextStep(outcome=invoice.outcome)
    if invoice.status in _ENDED:
        return NextStep(outcome=_ENDED[invoice.status])
    if invoice.dispute is not None:
        return NextStep(paused="dispute", wait_seconds=DISPUTE_RECHECK_SECONDS)

    done = set(invoice.stages) | set(invoice.skipped_stages)
    pending = [(s, at) for s, at in ladder(invoice, policy) if s.value not in done]
    if not pending:
        return NextStep(outcome=Outcome.CLAIMED if Stage.CLAIM.value in done else Outcome.ESCALATED)

    # A promise or a customer pause holds every notice until it ends; a promise that ends with the
    # invoice still open is broken, and the lifecycle wakes to say so on the day it ends.
    waits: list[tuple[datetime, str]] = []
    if invoice.promise is not None:
        if invoice.promise.resume_at <= now:
            return NextStep(promise_broken=True)
        waits.append((invoice.promise.resume_at, "promise"))
    if customer_pause is not None and customer_pause.until > now:
        waits.append((customer_pause.until, "customer_pause"))
    first_due = pending[0][1]
    blocking = [(until, why) for until, why in waits if first_due <= until]
    if blocking:
        until, why = max(blocking)
        return NextStep(paused=why, wait_seconds=_seconds_until(until, now))
    if waits and min(waits)[0] < first_due:
        return NextStep(wait_seconds=_seconds_until(min(waits)[0], now))

    # An invoice that arrives late, or a wait that ended late, runs only the stage due now:
    # the ones it missed are recorded as skipped and never fired back to back.
    past = [(s, at) for s, at in pending if at <= now]
    if past:
        stage, at = past[-1]
        return NextStep(stage=stage, due_at=at, skipped=tuple(s for s, _ in past[:-1]))
    stage, at = pending[0]
    return NextStep(stage=stage, due_at=at, wait_seconds=_seconds_until(at, now))
