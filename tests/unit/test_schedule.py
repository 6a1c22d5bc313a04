"""When things fall due: due dates and the next stage of the ladder, from the policy."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from arflow.logic.schedule import next_step, resolve_due_date
from arflow.models.invoice import InvoiceDocument, Party
from arflow.models.policy import Policy, Stage
from arflow.models.records import DueDateSource, InvoiceRecord, InvoiceStatus, Outcome

ISSUED = date(2026, 9, 1)
DUE = date(2026, 10, 1)


def document(**changes) -> InvoiceDocument:
    values = {
        "invoice_number": "INV-1",
        "supplier": Party(id="sup", name="Supplier Ltd"),
        "customer": Party(id="cus", name="Customer BV", email="ap@customer.example"),
        "issue_date": ISSUED,
        "currency": "EUR",
        "total_amount": Decimal("100.00"),
    }
    return InvoiceDocument(**(values | changes))


def invoice(**changes) -> InvoiceRecord:
    values = {
        "invoice_id": "inv_1",
        "customer_id": "cus",
        "supplier_id": "sup",
        "invoice_number": "INV-1",
        "document": document(due_date=DUE),
        "content_hash": "x",
        "currency": "EUR",
        "total_amount": Decimal("100.00"),
        "balance": Decimal("100.00"),
        "issue_date": ISSUED,
        "due_date": DUE,
        "due_date_source": DueDateSource.INVOICE,
        "insured": True,
        "received_at": datetime(2026, 9, 1, 8, tzinfo=UTC),
    }
    return InvoiceRecord(**(values | changes))


@pytest.mark.parametrize(
    ("changes", "customer_terms", "expected"),
    [
        ({"due_date": DUE}, 60, (DUE, DueDateSource.INVOICE)),
        ({"payment_terms_days": 45}, 60, (ISSUED + timedelta(45), DueDateSource.PAYMENT_TERMS)),
        ({}, 60, (ISSUED + timedelta(60), DueDateSource.CUSTOMER_TERMS)),
        ({}, None, (ISSUED + timedelta(30), DueDateSource.POLICY_DEFAULT)),
    ],
)
def test_due_date_comes_from_the_first_rule_that_has_one(changes, customer_terms, expected):
    # Given an invoice with or without its own due date and terms
    # When its due date is resolved under the default policy (30 days)
    # Then the invoice's own date wins, then its terms, then the customer's, then the policy's
    assert resolve_due_date(document(**changes), customer_terms, Policy()) == expected


def at(day_offset: int, hour: int = 9) -> datetime:
    return datetime.combine(DUE + timedelta(days=day_offset), datetime.min.time(), UTC).replace(
        hour=hour
    )


@pytest.mark.parametrize(
    ("now", "stages_done", "expected_stage", "expected_wait"),
    [
        (at(-30, 8), {}, Stage.REMINDER, 25 * 86400 + 3600),
        (at(-5), {}, Stage.REMINDER, 0),
        (at(-4), {"reminder": "x"}, Stage.OVERDUE_NOTICE, 7 * 86400),
        (at(15), {"reminder": "x", "overdue_notice": "x"}, Stage.FORMAL_NOTICE, 0),
    ],
)
def test_next_stage_and_how_long_to_wait(now, stages_done, expected_stage, expected_wait):
    # Given an open invoice due 2026-10-01 and the stages it has run
    record = invoice(stages=stages_done)

    # When the next step is planned at `now`
    step = next_step(record, Policy(), now)

    # Then it is the next stage, at 09:00 on its day, waited for to the second
    assert step.stage is expected_stage
    assert step.wait_seconds == expected_wait
    assert step.due_at == at(Policy().milestones.offset(expected_stage))


def test_a_late_invoice_runs_only_the_current_stage_and_skips_the_missed_ones():
    # Given an invoice that arrives 40 days after its due date, nothing done yet
    step = next_step(invoice(), Policy(), at(40))

    # Then the escalation runs now, and the three missed stages are skipped, not fired
    assert step.stage is Stage.ESCALATION
    assert step.due_now
    assert step.skipped == (Stage.REMINDER, Stage.OVERDUE_NOTICE, Stage.FORMAL_NOTICE)


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"status": InvoiceStatus.PAID}, Outcome.PAID),
        ({"status": InvoiceStatus.CREDITED}, Outcome.CREDITED),
        (
            {
                "stages": dict.fromkeys(
                    ["reminder", "overdue_notice", "formal_notice", "escalation", "claim"], "x"
                )
            },
            Outcome.CLAIMED,
        ),
        (
            {
                "insured": False,
                "stages": dict.fromkeys(
                    ["reminder", "overdue_notice", "formal_notice", "escalation"], "x"
                ),
            },
            Outcome.ESCALATED,
        ),
    ],
)
def test_the_lifecycle_ends_when_settled_or_when_the_ladder_is_done(changes, outcome):
    # Given an invoice settled, or with every stage of its ladder done
    # When the next step is planned
    step = next_step(invoice(**changes), Policy(), at(90))

    # Then the lifecycle ends with the matching outcome
    assert step.outcome is outcome
    assert not step.due_now


def test_milestones_follow_the_policy_timezone():
    # Given a policy in Shanghai (UTC+8) that sends at 09:00 local time
    policy = Policy(timezone="Asia/Shanghai")

    # When the reminder is planned a month ahead
    step = next_step(invoice(), policy, at(-30))

    # Then it falls at 01:00 UTC on due-5
    assert step.due_at == at(-5, hour=1)


def test_a_policy_that_notifies_the_insurer_too_late_is_refused():
    # Given a policy whose escalation (and insurer notification) falls after the insurer's deadline
    # Then it does not validate, and says why
    with pytest.raises(ValueError, match="after the policy's deadline"):
        Policy.model_validate(
            {
                "milestones": {"escalation": 50, "claim": 70},
                "insurance": {"overdue_notification_deadline_days": 45},
            }
        )
