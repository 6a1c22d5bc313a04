"""Whole invoice lifecycles on the local stack, on the virtual clock: what is sent, when, to whom.

The base invoice (tests/events/e2e/invoice.json) is EUR 1,000.00, issued 1 September 2026 and due
1 October 2026. With the default policy (UTC, notices at 09:00) its ladder falls on:

    reminder       due-5   2026-09-26 09:00
    overdue notice due+3   2026-10-04 09:00
    formal notice  due+15  2026-10-16 09:00   with the order hold
    escalation     due+30  2026-10-31 09:00   with the insurer notified
    claim          due+60  2026-11-30 09:00
"""

# Chinese is written with full-width colons; the expected texts have them.
# ruff: noqa: RUF001

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from support_policy import approving

from arflow_local.simulation import Simulation, simulation

pytestmark = pytest.mark.e2e

START = datetime(2026, 9, 1, 8, tzinfo=UTC)  # the morning of the base invoice's issue day
CUSTOMER = "CUST-KESTREL"
BUYER_EMAIL = "payables@kestrel-marine.example"
SENDER_EMAIL = "credit-control@supplier.example"
NUMBER = "E2E-2026-0001"

RECEIVED = "2026-09-01T08:00:00Z"
REMINDER = "2026-09-26T09:00:00Z"
OVERDUE = "2026-10-04T09:00:00Z"
FORMAL = "2026-10-16T09:00:00Z"
ESCALATION = "2026-10-31T09:00:00Z"
CLAIM = "2026-11-30T09:00:00Z"

CUSTOMER_NOTICES = {"reminder_sent", "overdue_notice_sent", "formal_notice_sent"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sent_at(message: EmailMessage) -> datetime:
    return parsedate_to_datetime(str(message["Date"]))


def subject(message: EmailMessage) -> str:
    return str(message["Subject"])


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def pay(sim: Simulation, invoice_id: str, amount: str, payment_id: str) -> dict[str, Any]:
    answer = sim.post_payment(
        {"payment_id": payment_id, "invoice_id": invoice_id, "amount": amount, "currency": "EUR"}
    )
    assert answer.status == 201, answer.body
    result: dict[str, Any] = answer.json()
    return result


@dataclass
class NeverPaid:
    """Everything one never-paid insured invoice left behind."""

    invoice_id: str
    execution_status: str
    timeline: list[dict[str, Any]]
    emails: list[EmailMessage]
    finance: list[dict[str, Any]]
    hold: dict[str, Any]
    letter: bytes
    claim_pack: dict[str, Any]
    failures: list[Any]


@pytest.fixture(scope="module")
def never_paid(invoice_json: Callable[..., bytes], send_invoice: Any) -> NeverPaid:
    # Given the base invoice, insured by the default policy, and a buyer who never pays
    with simulation(START, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json())
        invoice_id = accepted["invoice_id"]

        # When every execution has run to its end
        sim.run_until_idle()

        timeline = sim.timeline()
        bucket = sim.stack.ref("DocumentsBucket")
        s3 = sim.stack.client("s3")
        formal = next(e for e in timeline if e["event"] == "formal_notice_sent")
        claim = next(e for e in timeline if e["event"] == "claim_submitted")
        return NeverPaid(
            invoice_id=invoice_id,
            execution_status=sim.execution_status(accepted["execution_arn"])["status"],
            timeline=timeline,
            emails=sim.emails(),
            finance=sim.finance_notices(),
            hold=sim.hold_status(CUSTOMER).json(),
            letter=s3.get_object(Bucket=bucket, Key=formal["detail"]["letter_key"])["Body"].read(),
            claim_pack=json.loads(
                s3.get_object(Bucket=bucket, Key=claim["detail"]["pack_key"])["Body"].read()
            ),
            failures=list(sim.stack.failures),
        )


def test_never_paid_invoice_runs_every_stage_at_the_policy_offsets(
    never_paid: NeverPaid, story_of: Any
) -> None:
    # Then each stage ran once, in ladder order, exactly at its milestone
    assert story_of(never_paid.timeline, never_paid.invoice_id) == [
        (RECEIVED, "invoice_received"),
        (RECEIVED, "credit_checked"),
        (REMINDER, "reminder_sent"),
        (OVERDUE, "overdue_notice_sent"),
        (FORMAL, "formal_notice_sent"),
        (FORMAL, "order_hold_placed"),
        (ESCALATION, "finance_escalated"),
        (ESCALATION, "insurer_notified"),
        (CLAIM, "claim_submitted"),
        (CLAIM, "lifecycle_ended"),
    ]
    assert never_paid.execution_status == "SUCCEEDED"
    assert never_paid.failures == []


def test_never_paid_invoice_ends_claimed_for_ninety_percent_of_its_balance(
    never_paid: NeverPaid, events_of: Any
) -> None:
    # Then the claim is 90 % of the EUR 1,000.00 still open, and the lifecycle says CLAIMED
    (claim,) = events_of(never_paid.timeline, never_paid.invoice_id, "claim_submitted")
    assert claim["detail"]["amount_outstanding"] == "1000.00"
    assert claim["detail"]["indemnity_percent"] == "90"
    assert claim["detail"]["amount_claimed"] == "900.00"
    assert claim["detail"]["currency"] == "EUR"
    assert claim["detail"]["pack_key"] == f"claims/{never_paid.invoice_id}/claim-pack.json"
    assert never_paid.claim_pack["invoice"]["invoice_number"] == NUMBER

    (ended,) = events_of(never_paid.timeline, never_paid.invoice_id, "lifecycle_ended")
    assert ended["detail"]["outcome"] == "CLAIMED"
    assert ended["detail"]["balance"] == "1000.00"
    assert ended["detail"]["skipped_stages"] == []


def test_never_paid_invoice_escalates_to_finance_and_holds_new_orders(
    never_paid: NeverPaid, events_of: Any
) -> None:
    # Then finance hears once, a month after the due date, with legal referral
    (escalated,) = events_of(never_paid.timeline, never_paid.invoice_id, "finance_escalated")
    assert escalated["detail"]["reason"] == "overdue"
    assert escalated["detail"]["days_overdue"] == 30
    assert escalated["detail"]["legal_referral"] is True
    assert escalated["detail"]["amount_outstanding"] == "1000.00"
    assert [n["subject"] for n in never_paid.finance] == [
        f"Legal referral: invoice {NUMBER} of Kestrel Marine Ltd is 30 days overdue"
    ]
    assert never_paid.finance[0]["attributes"]["kind"]["Value"] == "finance_escalation"

    # And the insurer was told within the policy's 45-day deadline
    (notified,) = events_of(never_paid.timeline, never_paid.invoice_id, "insurer_notified")
    assert notified["detail"]["deadline"] == "2026-11-15"
    assert notified["detail"]["within_deadline"] is True

    # And the customer's new orders are held for the overdue invoice
    assert never_paid.hold["on_hold"] is True
    assert [(r["reason"], r["invoice_id"]) for r in never_paid.hold["reasons"]] == [
        ("invoice_overdue", never_paid.invoice_id)
    ]


def test_never_paid_invoice_sends_three_notices_to_the_buyer(
    never_paid: NeverPaid, events_of: Any
) -> None:
    reference = f"FN-20261016-{never_paid.invoice_id[-8:].upper()}"

    # Then the buyer got the reminder, the overdue reminder and the formal letter, at 09:00 UTC
    assert [(m["To"], m["From"], sent_at(m)) for m in never_paid.emails] == [
        (BUYER_EMAIL, SENDER_EMAIL, at(REMINDER)),
        (BUYER_EMAIL, SENDER_EMAIL, at(OVERDUE)),
        (BUYER_EMAIL, SENDER_EMAIL, at(FORMAL)),
    ]
    assert [m["Content-Language"] for m in never_paid.emails] == ["en", "en", "en"]

    # And the timeline records each one with its subject, naming the invoice
    notices = events_of(never_paid.timeline, never_paid.invoice_id, CUSTOMER_NOTICES)
    assert [(e["detail"]["to"], e["detail"]["subject"]) for e in notices] == [
        (BUYER_EMAIL, f"Payment reminder: invoice {NUMBER} is due on 1 October 2026"),
        (BUYER_EMAIL, f"Invoice {NUMBER} is overdue"),
        (BUYER_EMAIL, f"Formal notice: invoice {NUMBER} is overdue, ref. {reference}"),
    ]
    assert [e["detail"]["days_overdue"] for e in notices] == [-5, 3, 15]


def test_notice_subjects_read_back_as_written(never_paid: NeverPaid, events_of: Any) -> None:
    # Then each e-mail's Subject header, as a mail reader parses it, is the subject recorded
    notices = events_of(never_paid.timeline, never_paid.invoice_id, CUSTOMER_NOTICES)
    assert [subject(m) for m in never_paid.emails] == [e["detail"]["subject"] for e in notices]


def test_notices_quote_the_amount_the_due_date_and_how_late_it_is(never_paid: NeverPaid) -> None:
    # Then each text says how much, by when, and how late, and how to pay
    reminder, overdue, formal = (text_part(m) for m in never_paid.emails)
    assert "invoice E2E-2026-0001 for €1,000.00 is due on 1 October 2026 (due in 5 days)" in (
        " ".join(reminder.split())
    )
    assert "The amount outstanding of €1,000.00 is now 3 days overdue." in " ".join(overdue.split())
    assert "Amount outstanding: €1,000.00" in formal
    assert "Status: 15 days overdue" in formal
    assert "SE45 5000 0000 0583 9825 7466" in reminder


def test_formal_notice_carries_the_letter_and_archives_it(
    never_paid: NeverPaid, events_of: Any
) -> None:
    reference = f"FN-20261016-{never_paid.invoice_id[-8:].upper()}"
    formal_email = never_paid.emails[2]

    # Then the letter is attached to the formal e-mail
    attachments = list(formal_email.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        (f"{reference}.html", "text/html")
    ]
    attached = attachments[0].get_payload(decode=True)

    # And the same letter is archived, under the reference the timeline records
    (formal,) = events_of(never_paid.timeline, never_paid.invoice_id, "formal_notice_sent")
    assert formal["detail"]["letter_key"] == f"letters/{never_paid.invoice_id}/{reference}.html"
    assert never_paid.letter == attached
    letter = never_paid.letter.decode("utf-8")
    assert NUMBER in letter
    assert "€1,000.00" in letter
    assert reference in letter

    # And the attachment says how its text is encoded, so that mail clients show "€" as "€"
    assert attachments[0].get_content_charset() == "utf-8"
    assert attachments[0].get_content() == letter


@pytest.mark.parametrize(
    "customer",
    [
        pytest.param({"locale": "zh-CN", "country": "GB"}, id="locale-zh-CN"),
        pytest.param({"locale": None, "country": "CN"}, id="country-CN"),
    ],
)
def test_chinese_buyer_gets_notices_in_simplified_chinese(
    customer: dict[str, Any], invoice_json: Callable[..., bytes], send_invoice: Any
) -> None:
    # Given a buyer who reads Simplified Chinese
    with simulation(START, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json(customer=customer))

        # When the reminder is due, and the buyer pays the day after
        sim.advance_to(datetime(2026, 9, 27, 12, tzinfo=UTC))
        pay(sim, accepted["invoice_id"], "1000.00", "pay-zh")
        sim.run_until_idle()

        # Then the reminder went out in Chinese, labelled as such
        (reminder,) = sim.emails()
        assert reminder["To"] == BUYER_EMAIL
        assert reminder["Content-Language"] == "zh-CN"
        assert sent_at(reminder) == at(REMINDER)
        assert subject(reminder) == f"付款提醒：发票 {NUMBER} 将于 2026年10月1日到期"
        body = text_part(reminder)
        assert body.startswith("尊敬的Kestrel Marine Ltd：")
        assert f"贵司的发票 {NUMBER} 将于 2026年10月1日到期" in body
        assert "€1,000.00" in body
        (sent,) = [e for e in sim.timeline() if e["event"] == "reminder_sent"]
        assert sent["detail"]["language"] == "zh-CN"


def test_notices_go_out_at_the_send_hour_of_the_policy_timezone(
    invoice_json: Callable[..., bytes], send_invoice: Any, story_of: Any
) -> None:
    # Given a policy that sends from Shanghai (UTC+8) at 09:00 local
    with simulation(START, policy_text=approving("timezone: Asia/Shanghai")) as sim:
        accepted = send_invoice(sim, invoice_json())

        # When the invoice is never paid
        sim.run_until_idle()

        # Then every stage falls at 01:00 UTC on its day
        assert story_of(sim.timeline(), accepted["invoice_id"]) == [
            (RECEIVED, "invoice_received"),
            (RECEIVED, "credit_checked"),
            ("2026-09-26T01:00:00Z", "reminder_sent"),
            ("2026-10-04T01:00:00Z", "overdue_notice_sent"),
            ("2026-10-16T01:00:00Z", "formal_notice_sent"),
            ("2026-10-16T01:00:00Z", "order_hold_placed"),
            ("2026-10-31T01:00:00Z", "finance_escalated"),
            ("2026-10-31T01:00:00Z", "insurer_notified"),
            ("2026-11-30T01:00:00Z", "claim_submitted"),
            ("2026-11-30T01:00:00Z", "lifecycle_ended"),
        ]
        assert [sent_at(m) for m in sim.emails()] == [
            datetime(2026, 9, 26, 1, tzinfo=UTC),
            datetime(2026, 10, 4, 1, tzinfo=UTC),
            datetime(2026, 10, 16, 1, tzinfo=UTC),
        ]


def test_invoice_paid_after_the_reminder_ends_at_once_with_no_further_notice(
    invoice_json: Callable[..., bytes], send_invoice: Any, story_of: Any, events_of: Any
) -> None:
    # Given the base invoice, reminded on 26 September
    with simulation(START, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json())
        invoice_id = accepted["invoice_id"]
        sim.advance_to(datetime(2026, 9, 28, 10, 30, tzinfo=UTC))

        # When the buyer pays in full before the due date
        paid = pay(sim, invoice_id, "1000.00", "pay-early")
        sim.run_until_idle()

        # Then the invoice is settled and the lifecycle ends PAID in the same instant
        assert paid["balance"] == "0.00"
        assert paid["settled"] is True
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id) == [
            (RECEIVED, "invoice_received"),
            (RECEIVED, "credit_checked"),
            (REMINDER, "reminder_sent"),
            ("2026-09-28T10:30:00Z", "payment_received"),
            ("2026-09-28T10:30:00Z", "invoice_settled"),
            ("2026-09-28T10:30:00Z", "lifecycle_ended"),
        ]
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "PAID"
        assert ended["detail"]["balance"] == "0.00"
        assert ended["detail"]["stages"] == ["reminder"]
        assert sim.execution_status(accepted["execution_arn"])["status"] == "SUCCEEDED"

        # And nothing went out after the payment: one reminder, nothing to finance
        assert [subject(m) for m in sim.emails()] == [
            f"Payment reminder: invoice {NUMBER} is due on 1 October 2026"
        ]
        assert sim.finance_notices() == []
        assert sim.hold_status(CUSTOMER).json()["on_hold"] is False
        assert sim.stack.failures == []


STAGE_EVENTS = CUSTOMER_NOTICES | {"finance_escalated", "insurer_notified", "claim_submitted"}


@pytest.mark.parametrize(
    "instant",
    [
        pytest.param(REMINDER, id="reminder"),
        pytest.param(FORMAL, id="formal-notice"),
        pytest.param(CLAIM, id="claim"),
    ],
)
def test_payment_in_the_instant_a_stage_falls_due_leaves_nothing_sent_for_a_paid_invoice(
    instant: str, invoice_json: Callable[..., bytes], send_invoice: Any, events_of: Any
) -> None:
    # Given the base invoice, and the buyer paying in full at the very time a stage falls due
    with simulation(START, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json())
        invoice_id = accepted["invoice_id"]
        sim.advance_to(at(instant))

        # When the payment arrives while that stage's execution wakes up
        paid = pay(sim, invoice_id, "1000.00", "pay-in-the-instant")
        sim.run_until_idle()

        # Then the stage either went out before the payment, for the money then owed, or not at
        # all: nobody is sent a notice, and no insurer a claim, for an invoice already paid
        assert paid["settled"] is True
        timeline = sim.timeline()
        stages = events_of(timeline, invoice_id, STAGE_EVENTS)
        assert [
            (e["event"], e["detail"]["amount_outstanding"])
            for e in stages
            if e["detail"]["amount_outstanding"] == "0.00"
        ] == []
        assert [
            e["detail"]["amount_claimed"] for e in stages if "amount_claimed" in e["detail"]
        ] in (
            [],
            ["900.00"],
        )
        assert not any("€0.00" in text_part(m) for m in sim.emails())
        assert len(events_of(timeline, invoice_id, "lifecycle_ended")) == 1
        assert sim.stack.failures == []


def test_invoice_paid_after_the_formal_letter_releases_the_hold_and_is_not_escalated(
    invoice_json: Callable[..., bytes], send_invoice: Any, story_of: Any, events_of: Any
) -> None:
    # Given the base invoice, past its formal letter and its order hold
    with simulation(START, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json())
        invoice_id = accepted["invoice_id"]
        sim.advance_to(datetime(2026, 10, 20, 12, tzinfo=UTC))
        held = sim.hold_status(CUSTOMER).json()

        # When the buyer pays in full before the escalation
        pay(sim, invoice_id, "1000.00", "pay-late")
        sim.run_until_idle()

        # Then the hold placed with the letter is released at the payment
        assert held["on_hold"] is True
        assert [r["reason"] for r in held["reasons"]] == ["invoice_overdue"]
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[2:] == [
            (REMINDER, "reminder_sent"),
            (OVERDUE, "overdue_notice_sent"),
            (FORMAL, "formal_notice_sent"),
            (FORMAL, "order_hold_placed"),
            ("2026-10-20T12:00:00Z", "payment_received"),
            ("2026-10-20T12:00:00Z", "invoice_settled"),
            ("2026-10-20T12:00:00Z", "order_hold_released"),
            ("2026-10-20T12:00:00Z", "lifecycle_ended"),
        ]
        (released,) = events_of(timeline, invoice_id, "order_hold_released")
        assert released["detail"]["customer_released"] is True
        assert released["detail"]["remaining_reasons"] == []
        assert sim.hold_status(CUSTOMER).json() == {
            "customer_id": CUSTOMER,
            "on_hold": False,
            "reasons": [],
        }

        # And there is no escalation, no insurer notice and no claim after the payment
        assert events_of(timeline, invoice_id, {"finance_escalated", "insurer_notified"}) == []
        assert sim.finance_notices() == []
        assert len(sim.emails()) == 3
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "PAID"
        assert sim.execution_status(accepted["execution_arn"])["status"] == "SUCCEEDED"


def test_partly_paid_invoice_is_dunned_and_claimed_for_what_remains(
    invoice_json: Callable[..., bytes], send_invoice: Any, events_of: Any
) -> None:
    # Given the base invoice, of which the buyer pays EUR 400.00 the day after the due date
    with simulation(START, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json())
        invoice_id = accepted["invoice_id"]
        sim.advance_to(datetime(2026, 10, 2, 12, tzinfo=UTC))
        paid = pay(sim, invoice_id, "400.00", "pay-part")

        # When the rest is never paid
        sim.run_until_idle()

        # Then the payment leaves EUR 600.00 open and does not settle the invoice
        assert (paid["balance"], paid["settled"]) == ("600.00", False)
        timeline = sim.timeline()
        (received,) = events_of(timeline, invoice_id, "payment_received")
        assert received["detail"]["balance"] == "600.00"
        assert events_of(timeline, invoice_id, "invoice_settled") == []

        # And every later notice quotes the balance, not the invoice total
        notices = events_of(timeline, invoice_id, CUSTOMER_NOTICES)
        assert [(e["event"], e["detail"]["amount_outstanding"]) for e in notices] == [
            ("reminder_sent", "1000.00"),
            ("overdue_notice_sent", "600.00"),
            ("formal_notice_sent", "600.00"),
        ]
        overdue_text = " ".join(text_part(sim.emails()[1]).split())
        assert "The amount outstanding of €600.00 is now 3 days overdue." in overdue_text
        assert "Invoice total: €1,000.00" in text_part(sim.emails()[1])

        # And the claim is 90 % of the EUR 600.00 left
        (claim,) = events_of(timeline, invoice_id, "claim_submitted")
        assert (claim["detail"]["amount_outstanding"], claim["detail"]["amount_claimed"]) == (
            "600.00",
            "540.00",
        )
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert (ended["detail"]["outcome"], ended["detail"]["balance"]) == ("CLAIMED", "600.00")


def test_customer_stays_on_hold_until_its_last_overdue_invoice_is_paid(
    invoice_json: Callable[..., bytes], send_invoice: Any, events_of: Any
) -> None:
    # Given two invoices of one customer, due 1 and 5 October, both past their formal letters
    with simulation(START, policy_text=approving("{}")) as sim:
        first = send_invoice(sim, invoice_json())["invoice_id"]
        second = send_invoice(
            sim,
            invoice_json(
                invoice_number="E2E-2026-0002",
                due_date="2026-10-05",
                total_amount="500.00",
                tax_amount="100.00",
                lines=[{"description": "Gate valve DN80", "amount": "500.00"}],
            ),
        )["invoice_id"]
        sim.advance_to(datetime(2026, 10, 22, 12, tzinfo=UTC))
        both = sim.hold_status(CUSTOMER).json()

        # When the first is paid while the second is still overdue
        pay(sim, first, "1000.00", "pay-first")
        after_first = sim.hold_status(CUSTOMER).json()

        # Then the customer stays on hold, for the second invoice only
        assert [r["invoice_id"] for r in both["reasons"]] == [first, second]
        assert after_first["on_hold"] is True
        assert [(r["reason"], r["invoice_id"]) for r in after_first["reasons"]] == [
            ("invoice_overdue", second)
        ]
        (released_first,) = events_of(sim.timeline(), first, "order_hold_released")
        assert released_first["at"] == "2026-10-22T12:00:00Z"
        assert released_first["detail"]["customer_released"] is False
        assert released_first["detail"]["remaining_reasons"] == [f"invoice_overdue#{second}"]

        # When the second is paid too
        sim.advance_to(datetime(2026, 10, 24, 12, tzinfo=UTC))
        pay(sim, second, "500.00", "pay-second")
        sim.run_until_idle()

        # Then the customer is released, at that payment
        (released_second,) = events_of(sim.timeline(), second, "order_hold_released")
        assert released_second["at"] == "2026-10-24T12:00:00Z"
        assert released_second["detail"]["customer_released"] is True
        assert sim.hold_status(CUSTOMER).json()["on_hold"] is False
        outcomes = [
            e["detail"]["outcome"] for e in events_of(sim.timeline(), event="lifecycle_ended")
        ]
        assert outcomes == ["PAID", "PAID"]
        assert events_of(sim.timeline(), event="finance_escalated") == []


def test_milestones_of_the_policy_move_every_stage(
    invoice_json: Callable[..., bytes], send_invoice: Any, story_of: Any
) -> None:
    # Given a policy with its own ladder: -3, +7, +21, +35, +75 days from the due date
    policy = json.dumps(
        {
            "milestones": {
                "reminder": -3,
                "overdue_notice": 7,
                "formal_notice": 21,
                "escalation": 35,
                "claim": 75,
            },
            "send_hour": 14,
        }
    )
    with simulation(START, policy_text=approving(policy)) as sim:
        accepted = send_invoice(sim, invoice_json())

        # When the invoice is never paid
        sim.run_until_idle()

        # Then each stage falls on its own day, at 14:00
        assert story_of(sim.timeline(), accepted["invoice_id"]) == [
            (RECEIVED, "invoice_received"),
            (RECEIVED, "credit_checked"),
            ("2026-09-28T14:00:00Z", "reminder_sent"),
            ("2026-10-08T14:00:00Z", "overdue_notice_sent"),
            ("2026-10-22T14:00:00Z", "formal_notice_sent"),
            ("2026-10-22T14:00:00Z", "order_hold_placed"),
            ("2026-11-05T14:00:00Z", "finance_escalated"),
            ("2026-11-05T14:00:00Z", "insurer_notified"),
            ("2026-12-15T14:00:00Z", "claim_submitted"),
            ("2026-12-15T14:00:00Z", "lifecycle_ended"),
        ]


def test_claim_is_capped_at_the_discretionary_limit(
    invoice_json: Callable[..., bytes], send_invoice: Any, events_of: Any
) -> None:
    # Given cover of EUR 500.00 per buyer and an indemnity of 80 %
    policy = "insurance:\n  discretionary_limit: 500\n  indemnity_percent: 80\n"
    with simulation(START, policy_text=approving(policy)) as sim:
        accepted = send_invoice(sim, invoice_json())

        # When the EUR 1,000.00 invoice is never paid
        sim.run_until_idle()

        # Then the insured loss is the limit, and the claim 80 % of it
        (claim,) = events_of(sim.timeline(), accepted["invoice_id"], "claim_submitted")
        assert claim["detail"]["amount_outstanding"] == "1000.00"
        assert claim["detail"]["insured_loss"] == "500.00"
        assert claim["detail"]["amount_claimed"] == "400.00"


def test_uninsured_invoice_ends_escalated_without_a_claim(
    invoice_json: Callable[..., bytes], send_invoice: Any, story_of: Any, events_of: Any
) -> None:
    # Given a policy without trade-credit insurance
    with simulation(START, policy_text=approving("insurance: null")) as sim:
        accepted = send_invoice(sim, invoice_json())
        invoice_id = accepted["invoice_id"]

        # When the invoice is never paid
        sim.run_until_idle()

        # Then the lifecycle ends with the escalation: no insurer, no claim
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[-2:] == [
            (ESCALATION, "finance_escalated"),
            (ESCALATION, "lifecycle_ended"),
        ]
        assert events_of(timeline, invoice_id, {"insurer_notified", "claim_submitted"}) == []
        (received,) = events_of(timeline, invoice_id, "invoice_received")
        assert received["detail"]["insured"] is False
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "ESCALATED"
        assert ended["detail"]["stages"] == [
            "escalation",
            "formal_notice",
            "overdue_notice",
            "reminder",
        ]
        assert sim.execution_status(accepted["execution_arn"])["status"] == "SUCCEEDED"


def test_buyer_without_email_is_reported_unreachable_instead_of_each_notice(
    invoice_json: Callable[..., bytes], send_invoice: Any, story_of: Any, events_of: Any
) -> None:
    # Given a buyer with no e-mail address
    with simulation(START, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json(customer={"email": None}))
        invoice_id = accepted["invoice_id"]

        # When the invoice is never paid
        sim.run_until_idle()

        # Then finance hears, at each customer notice's time, that the buyer cannot be reached
        timeline = sim.timeline()
        escalations = events_of(timeline, invoice_id, "finance_escalated")
        assert [
            (e["at"], e["detail"]["reason"], e["detail"].get("notice_not_sent"))
            for e in escalations
        ] == [
            (REMINDER, "customer_unreachable", "reminder"),
            (OVERDUE, "customer_unreachable", "overdue_notice"),
            (FORMAL, "customer_unreachable", "formal_notice"),
            (ESCALATION, "overdue", None),
        ]
        assert [n["subject"] for n in sim.finance_notices()] == [
            f"Cannot reach Kestrel Marine Ltd: payment reminder for invoice {NUMBER} not sent",
            f"Cannot reach Kestrel Marine Ltd: overdue reminder for invoice {NUMBER} not sent",
            f"Cannot reach Kestrel Marine Ltd: formal dunning letter for invoice {NUMBER} not sent",
            f"Legal referral: invoice {NUMBER} of Kestrel Marine Ltd is 30 days overdue",
        ]

        # And no customer e-mail was sent, while the rest of the ladder ran as usual
        assert sim.emails() == []
        assert events_of(timeline, invoice_id, CUSTOMER_NOTICES) == []
        assert (FORMAL, "order_hold_placed") in story_of(timeline, invoice_id)
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert (ended["at"], ended["detail"]["outcome"]) == (CLAIM, "CLAIMED")
        assert sim.stack.failures == []


def test_invoice_arriving_forty_days_late_runs_only_the_escalation_once(
    invoice_json: Callable[..., bytes],
    send_invoice: Any,
    story_of: Any,
    events_of: Any,
    stored_invoice: Any,
) -> None:
    # Given the base invoice (due 1 October) first sent on 10 November, 40 days after its due date
    arrival = datetime(2026, 11, 10, 8, tzinfo=UTC)
    with simulation(arrival, policy_text=approving("{}")) as sim:
        accepted = send_invoice(sim, invoice_json())
        invoice_id = accepted["invoice_id"]

        # When it is never paid
        sim.run_until_idle()

        # Then only the stage due now runs, at once, and then the claim at its own time
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id) == [
            ("2026-11-10T08:00:00Z", "invoice_received"),
            ("2026-11-10T08:00:00Z", "credit_checked"),
            ("2026-11-10T08:00:00Z", "finance_escalated"),
            ("2026-11-10T08:00:00Z", "insurer_notified"),
            ("2026-11-10T08:00:00Z", "order_hold_placed"),
            (CLAIM, "claim_submitted"),
            (CLAIM, "lifecycle_ended"),
        ]
        (escalated,) = events_of(timeline, invoice_id, "finance_escalated")
        assert escalated["detail"]["days_overdue"] == 40

        # And none of the missed notices is sent back to back: they are recorded as skipped
        assert sim.emails() == []
        skipped = ["reminder", "overdue_notice", "formal_notice"]
        assert stored_invoice(sim, invoice_id).skipped_stages == skipped
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["skipped_stages"] == skipped
        assert ended["detail"]["outcome"] == "CLAIMED"
        assert [n["subject"] for n in sim.finance_notices()] == [
            f"Legal referral: invoice {NUMBER} of Kestrel Marine Ltd is 40 days overdue"
        ]


@pytest.mark.parametrize(
    ("changes", "policy", "due_date", "source", "reminder_at"),
    [
        pytest.param(
            {"payment_terms": "Payment within 45 days", "payment_terms_days": 45},
            "{}",
            "2026-10-16",
            "payment_terms",
            "2026-10-11T09:00:00Z",
            id="payment-terms",
        ),
        pytest.param(
            {"payment_terms": None},
            "{}",
            "2026-10-01",
            "policy_default",
            REMINDER,
            id="policy-default",
        ),
        pytest.param(
            {"payment_terms": None},
            "customer_payment_terms_days: {CUST-KESTREL: 21}",
            "2026-09-22",
            "customer_terms",
            "2026-09-17T09:00:00Z",
            id="customer-terms",
        ),
        pytest.param(
            {"payment_terms": None},
            "default_payment_terms_days: 14",
            "2026-09-15",
            "policy_default",
            "2026-09-10T09:00:00Z",
            id="policy-default-14-days",
        ),
    ],
)
def test_invoice_without_due_date_takes_it_from_its_terms_or_the_policy(
    changes: dict[str, Any],
    policy: str,
    due_date: str,
    source: str,
    reminder_at: str,
    invoice_json: Callable[..., bytes],
    send_invoice: Any,
    events_of: Any,
) -> None:
    # Given an invoice issued on 1 September with no due date
    with simulation(START, policy_text=approving(policy)) as sim:
        accepted = send_invoice(sim, invoice_json(due_date=None, **changes))

        # When it reaches its reminder, and is paid later that day
        sim.advance_to(at(reminder_at).replace(hour=12))
        pay(sim, accepted["invoice_id"], "1000.00", "pay-terms")
        sim.run_until_idle()

        # Then its due date came from the rule that applies, and says which rule that was
        assert (accepted["due_date"], accepted["due_date_source"]) == (due_date, source)
        timeline = sim.timeline()
        (received,) = events_of(timeline, accepted["invoice_id"], "invoice_received")
        assert (received["detail"]["due_date"], received["detail"]["due_date_source"]) == (
            due_date,
            source,
        )

        # And the ladder ran from it: the reminder five days before, at 09:00
        (reminder,) = events_of(timeline, accepted["invoice_id"], "reminder_sent")
        assert (reminder["at"], reminder["detail"]["due_date"]) == (reminder_at, due_date)
