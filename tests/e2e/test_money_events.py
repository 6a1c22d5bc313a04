"""Money and account events on the local stack: payments, credits, write-offs, disputes, promises,
customer pauses, holds across invoices, and what happens when they land on a milestone.

The base invoice (tests/events/money/invoice.json) is EUR 2,400.00 from Alder Pumps Oy to Heron
Freight GmbH, issued 1 September 2026 and due 1 October 2026. With the default policy (UTC,
notices at 09:00) its ladder falls on:

    reminder       due-5   2026-09-26 09:00
    overdue notice due+3   2026-10-04 09:00
    formal notice  due+15  2026-10-16 09:00   with the order hold
    escalation     due+30  2026-10-31 09:00   with the insurer notified
    claim          due+60  2026-11-30 09:00
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from arflow.dal.store import Customers
from arflow.logic.documents.stripe import wrap_stripe_object
from arflow.models.invoice import DocumentType, document_id
from arflow_local.simulation import Simulation, simulation
from arflow_local.stack import HttpAnswer

pytestmark = pytest.mark.e2e

EVENTS = Path(__file__).resolve().parents[1] / "events" / "money"
PEPPOL = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "peppol"

START = datetime(2026, 9, 1, 8, tzinfo=UTC)
SUPPLIER = "SUP-ALDER"
CUSTOMER = "CUST-HERON"
NUMBER = "MNY-2026-0101"
SECOND_NUMBER = "MNY-2026-0102"
BUYER_EMAIL = "accounts@heron-freight.example"

RECEIVED = "2026-09-01T08:00:00Z"
REMINDER = "2026-09-26T09:00:00Z"
OVERDUE = "2026-10-04T09:00:00Z"
FORMAL = "2026-10-16T09:00:00Z"
ESCALATION = "2026-10-31T09:00:00Z"

NOTICES = {"reminder_sent", "overdue_notice_sent", "formal_notice_sent"}
ACTS = NOTICES | {"order_hold_placed", "finance_escalated", "insurer_notified", "claim_submitted"}

Entry = dict[str, Any]
Story = Callable[[list[Entry], str], list[tuple[str, str]]]
Select = Callable[..., list[Entry]]
Send = Callable[[Simulation, bytes], dict[str, Any]]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sent_at(message: EmailMessage) -> datetime:
    return parsedate_to_datetime(str(message["Date"]))


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())


@contextmanager
def money_simulation(start: datetime) -> Iterator[Simulation]:
    """The local stack with the default policy, and credit reports on every buyer used here.

    The reports let each credit check approve the buyer, so that the only holds and finance
    notices are those the money and account events bring about.
    """
    with simulation(start, policy_text="{}") as sim:
        sim.load_credit_reports(EVENTS / "credit_reports.json")
        yield sim


def document(name: str, **changes: Any) -> bytes:
    """A base document of tests/events/money with some top-level fields replaced."""
    body = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return json.dumps({**body, **changes}, indent=2).encode()


def second_invoice(due_date: str, total: str) -> bytes:
    return document(
        "invoice.json",
        invoice_number=SECOND_NUMBER,
        due_date=due_date,
        total_amount=total,
        tax_amount=None,
        lines=[{"description": "Seal kit SK-80", "amount": total}],
        payment_instructions={"iban": "FI2112345600000785", "payment_reference": SECOND_NUMBER},
    )


def pay(sim: Simulation, invoice_id: str, amount: str, payment_id: str) -> HttpAnswer:
    return sim.post_payment(
        {"payment_id": payment_id, "invoice_id": invoice_id, "amount": amount, "currency": "EUR"}
    )


def paid(sim: Simulation, invoice_id: str, amount: str, payment_id: str) -> dict[str, Any]:
    answer = pay(sim, invoice_id, amount, payment_id)
    assert answer.status == 201, answer.body
    body: dict[str, Any] = answer.json()
    return body


def act(sim: Simulation, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = sim.post_action(method, path, body)
    assert answer.status == 200, answer.body
    result: dict[str, Any] = answer.json()
    return result


def events_after(story: list[tuple[str, str]], event: str) -> list[str]:
    """The events recorded after the first `event` of a story."""
    names = [name for _, name in story]
    return names[names.index(event) + 1 :]


def credit_balance(sim: Simulation, customer_id: str) -> dict[str, Decimal]:
    customer = Customers(sim.stack.ref("CustomersTable"), sim.stack.region).get(customer_id)
    assert customer is not None
    return dict(customer.credit_balance)


def stripe_event(obj: dict[str, Any], event_type: str, created: datetime) -> bytes:
    """The event Stripe delivers for `obj`, of the given type, with an id of its own."""
    event = wrap_stripe_object(obj, int(created.timestamp()), "acct_alder")
    event["type"] = event_type
    event["id"] = f"evt_{event_type.replace('.', '_')}_{obj['id'][-8:]}"
    return json.dumps(event).encode()


# Payments.


def test_full_payment_settles_and_ends_the_lifecycle_at_its_instant(
    send_invoice: Send, story_of: Story, events_of: Select, stored_invoice: Any
) -> None:
    # Given the base invoice, reminded and sent its overdue notice
    with money_simulation(START) as sim:
        accepted = send_invoice(sim, document("invoice.json"))
        invoice_id = accepted["invoice_id"]
        sim.advance_to(datetime(2026, 10, 6, 10, 15, tzinfo=UTC))

        # When the buyer pays the whole EUR 2,400.00
        body = paid(sim, invoice_id, "2400.00", "pay-full")
        sim.run_until_idle()

        # Then the invoice is settled and its lifecycle ends PAID at the payment's instant
        assert (body["status"], body["balance"], body["settled"]) == ("applied", "0.00", True)
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id) == [
            (RECEIVED, "invoice_received"),
            (RECEIVED, "credit_checked"),
            (REMINDER, "reminder_sent"),
            (OVERDUE, "overdue_notice_sent"),
            ("2026-10-06T10:15:00Z", "payment_received"),
            ("2026-10-06T10:15:00Z", "invoice_settled"),
            ("2026-10-06T10:15:00Z", "lifecycle_ended"),
        ]
        (received,) = events_of(timeline, invoice_id, "payment_received")
        assert received["detail"]["amount"] == "2400.00"
        assert received["detail"]["balance"] == "0.00"
        assert "customer_credit" not in received["detail"]
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert (ended["detail"]["outcome"], ended["detail"]["balance"]) == ("PAID", "0.00")
        assert stored_invoice(sim, invoice_id).balance == Decimal("0.00")

        # And nothing was sent after it: two notices before, none to finance
        assert [(m["To"], sent_at(m)) for m in sim.emails()] == [
            (BUYER_EMAIL, at(REMINDER)),
            (BUYER_EMAIL, at(OVERDUE)),
        ]
        assert sim.finance_notices() == []
        assert sim.execution_status(accepted["execution_arn"])["status"] == "SUCCEEDED"
        assert sim.stack.failures == []


def test_partial_payment_is_quoted_by_the_next_notice_and_settles_nothing(
    send_invoice: Send, events_of: Select
) -> None:
    # Given the base invoice, of which the buyer pays EUR 900.00 the day after the due date
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 2, 12, tzinfo=UTC))
        body = paid(sim, invoice_id, "900.00", "pay-part")

        # When the overdue notice falls due, and the buyer pays the rest after it
        sim.advance_to(datetime(2026, 10, 5, 12, tzinfo=UTC))
        timeline = sim.timeline()
        emails = sim.emails()
        paid(sim, invoice_id, "1500.00", "pay-rest")
        sim.run_until_idle()

        # Then the first payment left EUR 1,500.00 open and settled nothing
        assert (body["balance"], body["settled"]) == ("1500.00", False)
        (received,) = events_of(timeline, invoice_id, "payment_received")
        assert (received["at"], received["detail"]["balance"]) == (
            "2026-10-02T12:00:00Z",
            "1500.00",
        )
        assert events_of(timeline, invoice_id, "invoice_settled") == []

        # And the next notice quoted the balance, in its event and in its e-mail
        notices = events_of(timeline, invoice_id, NOTICES)
        assert [(e["at"], e["event"], e["detail"]["amount_outstanding"]) for e in notices] == [
            (REMINDER, "reminder_sent", "2400.00"),
            (OVERDUE, "overdue_notice_sent", "1500.00"),
        ]
        assert [sent_at(m) for m in emails] == [at(REMINDER), at(OVERDUE)]
        assert "The amount outstanding of €1,500.00 is now 3 days overdue." in text_of(emails[1])

        # And the rest settled it
        (ended,) = events_of(sim.timeline(), invoice_id, "lifecycle_ended")
        assert (ended["at"], ended["detail"]["outcome"]) == ("2026-10-05T12:00:00Z", "PAID")


def test_over_payment_settles_the_invoice_and_keeps_the_excess_as_customer_credit(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice of EUR 2,400.00
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 20, 14, tzinfo=UTC))

        # When the buyer pays EUR 2,500.00 for it
        body = paid(sim, invoice_id, "2500.00", "pay-over")
        sim.run_until_idle()

        # Then the invoice is settled, and the EUR 100.00 too much is the customer's credit
        assert (body["balance"], body["settled"]) == ("0.00", True)
        timeline = sim.timeline()
        (received,) = events_of(timeline, invoice_id, "payment_received")
        assert received["detail"]["amount"] == "2500.00"
        assert received["detail"]["balance"] == "0.00"
        assert received["detail"]["customer_credit"] == "100.00"
        assert credit_balance(sim, CUSTOMER) == {"EUR": Decimal("100.00")}
        assert story_of(timeline, invoice_id)[2:] == [
            ("2026-09-20T14:00:00Z", "payment_received"),
            ("2026-09-20T14:00:00Z", "invoice_settled"),
            ("2026-09-20T14:00:00Z", "lifecycle_ended"),
        ]
        assert sim.emails() == []


def test_same_payment_twice_is_applied_once(
    send_invoice: Send, events_of: Select, stored_invoice: Any
) -> None:
    # Given the base invoice
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 28, 9, 30, tzinfo=UTC))

        # When the bank delivers the same full payment twice, an hour apart
        first = pay(sim, invoice_id, "2400.00", "bank-7781")
        sim.advance_to(datetime(2026, 9, 28, 10, 30, tzinfo=UTC))
        second = pay(sim, invoice_id, "2400.00", "bank-7781")
        sim.run_until_idle()

        # Then it is applied once: no credit for the second delivery, one settlement, one end
        assert (first.status, first.json()["status"]) == (201, "applied")
        assert (second.status, second.json()["status"]) == (200, "duplicate")
        timeline = sim.timeline()
        received = events_of(timeline, invoice_id, "payment_received")
        assert [(e["at"], e["detail"]["payment_id"]) for e in received] == [
            ("2026-09-28T09:30:00Z", "bank-7781")
        ]
        assert len(events_of(timeline, invoice_id, "invoice_settled")) == 1
        assert len(events_of(timeline, invoice_id, "lifecycle_ended")) == 1
        assert stored_invoice(sim, invoice_id).balance == Decimal("0.00")
        assert credit_balance(sim, CUSTOMER) == {}


def test_payment_before_its_invoice_is_held_and_applied_when_the_invoice_arrives(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given EUR 1,000.00 received on 1 September for an invoice not sent yet
    with money_simulation(START) as sim:
        early = sim.post_payment(
            {
                "payment_id": "bank-early",
                "supplier_id": SUPPLIER,
                "invoice_number": NUMBER,
                "amount": "1000.00",
                "currency": "EUR",
            }
        )
        timeline_before = sim.timeline()

        # When the invoice arrives two days later, and is paid in full after its reminder
        sim.advance_to(datetime(2026, 9, 3, 8, tzinfo=UTC))
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 27, 12, tzinfo=UTC))
        paid(sim, invoice_id, "1400.00", "bank-rest")
        sim.run_until_idle()

        # Then the money was kept, not refused, and nothing happened before the invoice came
        assert early.status == 202, early.body
        assert early.json()["status"] == "held"
        assert early.json()["invoice_id"] == invoice_id
        assert timeline_before == []

        # And it was applied on arrival, saying since when it was held
        timeline = sim.timeline()
        first, rest = events_of(timeline, invoice_id, "payment_received")
        assert first["at"] == "2026-09-03T08:00:00Z"
        assert first["detail"]["payment_id"] == "bank-early"
        assert (first["detail"]["amount"], first["detail"]["balance"]) == ("1000.00", "1400.00")
        assert at(first["detail"]["held_since"]) == START
        assert "held_since" not in rest["detail"]

        # And the reminder quoted what was left
        (reminder,) = events_of(timeline, invoice_id, "reminder_sent")
        assert reminder["detail"]["amount_outstanding"] == "1400.00"
        assert story_of(timeline, invoice_id)[-3:] == [
            ("2026-09-27T12:00:00Z", "payment_received"),
            ("2026-09-27T12:00:00Z", "invoice_settled"),
            ("2026-09-27T12:00:00Z", "lifecycle_ended"),
        ]


def test_held_payment_covering_its_invoice_ends_the_lifecycle_paid_without_any_notice(
    send_invoice: Send, events_of: Select
) -> None:
    # Given the whole EUR 2,400.00 received before the invoice was sent
    with money_simulation(START) as sim:
        early = sim.post_payment(
            {
                "payment_id": "bank-prepaid",
                "supplier_id": SUPPLIER,
                "invoice_number": NUMBER,
                "amount": "2400.00",
                "currency": "EUR",
            }
        )

        # When the invoice arrives a week later and every execution runs to its end
        sim.advance_to(datetime(2026, 9, 8, 8, tzinfo=UTC))
        accepted = send_invoice(sim, document("invoice.json"))
        invoice_id = accepted["invoice_id"]
        sim.run_until_idle()

        # Then it was settled by the held money on arrival, and ended PAID at once
        assert early.status == 202, early.body
        timeline = sim.timeline()
        (received,) = events_of(timeline, invoice_id, "payment_received")
        assert received["at"] == "2026-09-08T08:00:00Z"
        assert received["detail"]["balance"] == "0.00"
        assert at(received["detail"]["held_since"]) == START
        (settled,) = events_of(timeline, invoice_id, "invoice_settled")
        assert settled["detail"]["status"] == "paid"
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert (ended["at"], ended["detail"]["outcome"]) == ("2026-09-08T08:00:00Z", "PAID")
        assert ended["detail"]["stages"] == []

        # And no notice of any kind was sent
        assert events_of(timeline, invoice_id, ACTS) == []
        assert sim.emails() == []
        assert sim.finance_notices() == []
        assert sim.execution_status(accepted["execution_arn"])["status"] == "SUCCEEDED"


def test_payment_in_another_currency_needs_its_worth_in_the_invoice_currency(
    send_invoice: Send, events_of: Select, stored_invoice: Any
) -> None:
    # Given the base invoice in EUR
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 15, 11, tzinfo=UTC))
        sek = {"invoice_id": invoice_id, "amount": "27600.00", "currency": "SEK"}

        # When a payment in SEK arrives without its worth in EUR
        bare = sim.post_payment({"payment_id": "sek-1", **sek})
        balance_after_bare = stored_invoice(sim, invoice_id).balance

        # And then one that says what it is worth in EUR
        converted = sim.post_payment(
            {"payment_id": "sek-2", **sek, "amount_in_invoice_currency": "2400.00"}
        )
        sim.run_until_idle()

        # Then the first is refused and changes nothing
        assert bare.status == 422, bare.body
        assert bare.json()["error"] == "PaymentRejectedError"
        assert balance_after_bare == Decimal("2400.00")

        # And the second is applied for its EUR amount, and settles the invoice
        assert converted.status == 201, converted.body
        assert (converted.json()["balance"], converted.json()["settled"]) == ("0.00", True)
        timeline = sim.timeline()
        (received,) = events_of(timeline, invoice_id, "payment_received")
        assert received["detail"]["payment_id"] == "sek-2"
        assert (received["detail"]["amount"], received["detail"]["currency"]) == (
            "2400.00",
            "EUR",
        )
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "PAID"


def test_stripe_invoice_paid_and_payment_succeeded_are_one_payment(
    story_of: Story, events_of: Select
) -> None:
    # Given a Stripe invoice of EUR 1,860.00, due 1 October 2026, to a customer with an e-mail
    obj = json.loads((EVENTS / "stripe_invoice.json").read_text(encoding="utf-8"))
    paid_obj = {
        **obj,
        "status": "paid",
        "amount_paid": 186000,
        "amount_remaining": 0,
        "payment_intent": "pi_3PmnyAlderPaid01",
    }
    with money_simulation(START) as sim:
        finalized = sim.post_stripe_event(stripe_event(obj, "invoice.finalized", START))
        assert finalized.status == 202, finalized.body
        invoice_id = finalized.json()["invoice_id"]

        # When it is paid after its overdue notice, and Stripe reports it with both events
        paid_at = datetime(2026, 10, 5, 15, tzinfo=UTC)
        sim.advance_to(paid_at)
        first = sim.post_stripe_event(stripe_event(paid_obj, "invoice.paid", paid_at))
        second = sim.post_stripe_event(stripe_event(paid_obj, "invoice.payment_succeeded", paid_at))
        sim.run_until_idle()

        # Then the money counts once, and the lifecycle ends PAID at it
        assert (first.status, first.json()["status"]) == (201, "applied")
        assert (second.status, second.json()["status"]) == (200, "duplicate")
        timeline = sim.timeline()
        (received,) = events_of(timeline, invoice_id, "payment_received")
        assert received["detail"]["payment_id"] == "stripe:pi_3PmnyAlderPaid01"
        assert (received["detail"]["amount"], received["detail"]["balance"]) == ("1860.00", "0.00")
        assert story_of(timeline, invoice_id)[-5:] == [
            (REMINDER, "reminder_sent"),
            (OVERDUE, "overdue_notice_sent"),
            ("2026-10-05T15:00:00Z", "payment_received"),
            ("2026-10-05T15:00:00Z", "invoice_settled"),
            ("2026-10-05T15:00:00Z", "lifecycle_ended"),
        ]
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "PAID"
        assert [m["To"] for m in sim.emails()] == ["billing@heron-freight.example"] * 2


# Credit notes.


def test_credit_note_reduces_the_balance_of_the_invoice_it_references(
    send_invoice: Send, events_of: Select
) -> None:
    # Given the base invoice of EUR 2,400.00
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 10, 10, tzinfo=UTC))

        # When a credit note of EUR 400.00 for it arrives, and the rest is paid after the reminder
        answer = sim.post_document(document("credit_note.json"), "application/json")
        sim.advance_to(datetime(2026, 9, 27, 12, tzinfo=UTC))
        paid(sim, invoice_id, "2000.00", "pay-after-credit")
        sim.run_until_idle()

        # Then the credit is applied to the invoice, leaving EUR 2,000.00
        assert answer.status == 200, answer.body
        assert answer.json()["status"] == "credit_applied"
        assert (answer.json()["applied_to"], answer.json()["balance"]) == (invoice_id, "2000.00")
        timeline = sim.timeline()
        (credit,) = events_of(timeline, invoice_id, "credit_applied")
        assert credit["at"] == "2026-09-10T10:00:00Z"
        assert credit["detail"]["credit_note"] == "MNY-CN-0101"
        assert (credit["detail"]["amount"], credit["detail"]["balance"]) == ("400.00", "2000.00")
        assert events_of(timeline, invoice_id, "invoice_settled")[0]["at"] == (
            "2026-09-27T12:00:00Z"
        )

        # And the reminder asked for what was left
        (reminder,) = events_of(timeline, invoice_id, "reminder_sent")
        assert reminder["detail"]["amount_outstanding"] == "2000.00"
        assert "€2,000.00" in text_of(sim.emails()[0])


def test_credit_note_covering_the_invoice_settles_it_as_credited(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice, past its overdue notice
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 6, 10, tzinfo=UTC))

        # When a credit note for the whole EUR 2,400.00 arrives
        answer = sim.post_document(
            document("credit_note.json", total_amount="2400.00", tax_amount="464.52"),
            "application/json",
        )
        sim.run_until_idle()

        # Then it settles the invoice, which ends CREDITED at once, and nothing more is sent
        assert answer.status == 200, answer.body
        assert answer.json()["balance"] == "0.00"
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[2:] == [
            (REMINDER, "reminder_sent"),
            (OVERDUE, "overdue_notice_sent"),
            ("2026-10-06T10:00:00Z", "credit_applied"),
            ("2026-10-06T10:00:00Z", "invoice_settled"),
            ("2026-10-06T10:00:00Z", "lifecycle_ended"),
        ]
        (settled,) = events_of(timeline, invoice_id, "invoice_settled")
        assert settled["detail"]["status"] == "credited"
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert (ended["detail"]["outcome"], ended["detail"]["balance"]) == ("CREDITED", "0.00")
        assert len(sim.emails()) == 2
        assert credit_balance(sim, CUSTOMER) == {}


def test_credit_note_for_no_known_invoice_becomes_customer_credit(
    send_invoice: Send, events_of: Select, stored_invoice: Any
) -> None:
    # Given the base invoice, open
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 10, 10, tzinfo=UTC))

        # When a credit note of EUR 400.00 arrives for an invoice number nobody sent
        answer = sim.post_document(
            document("credit_note.json", billing_reference="MNY-2025-0999"), "application/json"
        )
        timeline = sim.timeline()
        balance = stored_invoice(sim, invoice_id).balance
        paid(sim, invoice_id, "2400.00", "pay-open")
        sim.run_until_idle()

        # Then it is kept as the customer's credit, on the credit note's own history
        credit_note_id = document_id(SUPPLIER, "MNY-CN-0101", DocumentType.CREDIT_NOTE)
        assert answer.status == 200, answer.body
        assert (answer.json()["status"], answer.json()["applied_to"]) == (
            "credit_applied",
            "customer_credit",
        )
        (credit,) = events_of(timeline, credit_note_id, "credit_applied")
        assert credit["detail"]["applied_to"] == "customer_credit"
        assert credit["detail"]["customer_id"] == CUSTOMER
        assert (credit["detail"]["amount"], credit["detail"]["reference"]) == (
            "400.00",
            "MNY-2025-0999",
        )
        assert credit_balance(sim, CUSTOMER) == {"EUR": Decimal("400.00")}

        # And the open invoice is untouched by it
        assert balance == Decimal("2400.00")
        assert events_of(timeline, invoice_id, "credit_applied") == []


def test_peppol_credit_note_credits_its_invoice_fully(events_of: Select, story_of: Story) -> None:
    invoice_file = PEPPOL / "base-example.xml"
    credit_file = PEPPOL / "base-creditnote-correction.xml"
    if not (invoice_file.is_file() and credit_file.is_file()):
        pytest.skip(f"no Peppol samples at {PEPPOL}")

    # Given the Peppol invoice Snippet1 (EUR 1,656.25, due 1 December 2017), received in November
    with money_simulation(datetime(2017, 11, 14, 8, tzinfo=UTC)) as sim:
        accepted = sim.post_document(invoice_file.read_bytes(), "application/xml")
        assert accepted.status == 202, accepted.body
        invoice_id = accepted.json()["invoice_id"]

        # When its credit note correction arrives the next day
        sim.advance_to(datetime(2017, 11, 15, 10, tzinfo=UTC))
        credited = sim.post_document(credit_file.read_bytes(), "application/xml")
        sim.run_until_idle()

        # Then the whole invoice is credited, and its lifecycle ends CREDITED before any notice
        assert credited.status == 200, credited.body
        assert (credited.json()["applied_to"], credited.json()["balance"]) == (invoice_id, "0.00")
        timeline = sim.timeline()
        (credit,) = events_of(timeline, invoice_id, "credit_applied")
        assert (credit["detail"]["credit_note"], credit["detail"]["amount"]) == (
            "Snippet1",
            "1656.25",
        )
        assert story_of(timeline, invoice_id)[-3:] == [
            ("2017-11-15T10:00:00Z", "credit_applied"),
            ("2017-11-15T10:00:00Z", "invoice_settled"),
            ("2017-11-15T10:00:00Z", "lifecycle_ended"),
        ]
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "CREDITED"
        assert events_of(timeline, invoice_id, ACTS) == []
        assert sim.emails() == []


# Write-off.


def test_write_off_closes_the_invoice_releases_its_hold_and_stops_dunning(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice, past its formal notice and holding the customer's orders
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 20, 12, tzinfo=UTC))
        held = sim.hold_status(CUSTOMER).json()

        # When credit control writes it off
        result = act(
            sim, "POST", f"/invoices/{invoice_id}/write-off", {"reason": "buyer insolvent"}
        )
        sim.run_until_idle()

        # Then it is written off for its balance, its hold goes, and the lifecycle ends
        assert held["on_hold"] is True
        assert (result["status"], result["amount"]) == ("written_off", "2400.00")
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[2:] == [
            (REMINDER, "reminder_sent"),
            (OVERDUE, "overdue_notice_sent"),
            (FORMAL, "formal_notice_sent"),
            (FORMAL, "order_hold_placed"),
            ("2026-10-20T12:00:00Z", "written_off"),
            ("2026-10-20T12:00:00Z", "order_hold_released"),
            ("2026-10-20T12:00:00Z", "lifecycle_ended"),
        ]
        (written_off,) = events_of(timeline, invoice_id, "written_off")
        assert written_off["detail"]["reason"] == "buyer insolvent"
        assert (written_off["detail"]["amount"], written_off["detail"]["currency"]) == (
            "2400.00",
            "EUR",
        )
        (released,) = events_of(timeline, invoice_id, "order_hold_released")
        assert released["detail"]["customer_released"] is True
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "WRITTEN_OFF"
        assert sim.hold_status(CUSTOMER).json() == {
            "customer_id": CUSTOMER,
            "on_hold": False,
            "reasons": [],
        }

        # And nothing went out after: three notices before it, no escalation, no claim
        assert len(sim.emails()) == 3
        assert sim.finance_notices() == []


# Disputes.


def test_dispute_silences_every_stage_and_its_resolution_runs_only_the_current_one(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice, disputed before its reminder
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 20, 10, tzinfo=UTC))
        opened = act(
            sim, "POST", f"/invoices/{invoice_id}/dispute", {"reason": "pump delivered faulty"}
        )

        # When the reminder, overdue notice, formal notice and escalation all pass
        sim.advance_to(datetime(2026, 11, 5, 12, tzinfo=UTC))
        while_disputed = sim.timeline()
        emails_while_disputed = sim.emails()
        finance_while_disputed = sim.finance_notices()
        hold_while_disputed = sim.hold_status(CUSTOMER).json()

        # And the dispute is resolved then, and the invoice paid ten days later
        resolved = act(
            sim,
            "POST",
            f"/invoices/{invoice_id}/dispute/resolve",
            {"resolution": "replacement delivered"},
        )
        sim.advance_to(datetime(2026, 11, 15, 12, tzinfo=UTC))
        paid(sim, invoice_id, "2400.00", "pay-after-dispute")
        sim.run_until_idle()

        # Then nothing at all was done while the dispute stood
        assert opened["status"] == "disputed"
        assert story_of(while_disputed, invoice_id) == [
            (RECEIVED, "invoice_received"),
            (RECEIVED, "credit_checked"),
            ("2026-09-20T10:00:00Z", "dispute_opened"),
            ("2026-09-20T10:00:00Z", "dunning_paused"),
        ]
        (dispute,) = events_of(while_disputed, invoice_id, "dispute_opened")
        assert dispute["detail"]["reason"] == "pump delivered faulty"
        assert dispute["detail"]["insurable"] is False
        assert emails_while_disputed == []
        assert finance_while_disputed == []
        assert hold_while_disputed["on_hold"] is False

        # And its resolution ran the escalation once, at once, and none of the stages missed
        assert resolved["status"] == "resolved"
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[4:] == [
            ("2026-11-05T12:00:00Z", "dispute_resolved"),
            ("2026-11-05T12:00:00Z", "dunning_resumed"),
            ("2026-11-05T12:00:00Z", "finance_escalated"),
            ("2026-11-05T12:00:00Z", "insurer_notified"),
            ("2026-11-05T12:00:00Z", "order_hold_placed"),
            ("2026-11-15T12:00:00Z", "payment_received"),
            ("2026-11-15T12:00:00Z", "invoice_settled"),
            ("2026-11-15T12:00:00Z", "order_hold_released"),
            ("2026-11-15T12:00:00Z", "lifecycle_ended"),
        ]
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == "PAID"
        assert ended["detail"]["stages"] == ["escalation", "insurer_notification"]
        assert ended["detail"]["skipped_stages"] == ["reminder", "overdue_notice", "formal_notice"]
        assert sim.emails() == []
        assert len(sim.finance_notices()) == 1


def test_account_actions_answer_not_found_conflict_invalid_and_unauthenticated(
    send_invoice: Send, events_of: Select
) -> None:
    # Given the base invoice
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 9, 10, 10, tzinfo=UTC))
        dispute = f"/invoices/{invoice_id}/dispute"
        pause = f"/customers/{CUSTOMER}/pause"
        forged = json.dumps({"reason": "forged"}).encode()

        # When credit control asks for each of these, in this order
        answers = {
            "dispute unknown invoice": sim.post_action(
                "POST", "/invoices/inv_00000000000000000000/dispute", {"reason": "no such"}
            ),
            "dispute": sim.post_action("POST", dispute, {"reason": "wrong quantity"}),
            "dispute again": sim.post_action("POST", dispute, {"reason": "wrong quantity"}),
            "resolve": sim.post_action("POST", f"{dispute}/resolve", {"resolution": "agreed"}),
            "resolve again": sim.post_action(
                "POST", f"{dispute}/resolve", {"resolution": "agreed"}
            ),
            "promise in the past": sim.post_action(
                "POST", f"/invoices/{invoice_id}/promise", {"pay_by": "2026-09-01"}
            ),
            "pause ending in the past": sim.post_action(
                "POST", pause, {"reason": "audit", "until": "2026-09-09T09:00:00+00:00"}
            ),
            "pause unknown customer": sim.post_action(
                "POST",
                "/customers/CUST-NOBODY/pause",
                {"reason": "audit", "until": "2026-09-20T09:00:00+00:00"},
            ),
            "unsigned dispute": sim.stack.request(
                "POST", dispute, {"content-type": "application/json"}, forged
            ),
            "write off": sim.post_action(
                "POST", f"/invoices/{invoice_id}/write-off", {"reason": "goodwill"}
            ),
            "dispute written off": sim.post_action("POST", dispute, {"reason": "late"}),
            "write off again": sim.post_action(
                "POST", f"/invoices/{invoice_id}/write-off", {"reason": "goodwill"}
            ),
        }
        sim.run_until_idle()

        # Then each is answered as specified
        assert {name: answer.status for name, answer in answers.items()} == {
            "dispute unknown invoice": 404,
            "dispute": 200,
            "dispute again": 409,
            "resolve": 200,
            "resolve again": 409,
            "promise in the past": 422,
            "pause ending in the past": 422,
            "pause unknown customer": 404,
            "unsigned dispute": 401,
            "write off": 200,
            "dispute written off": 409,
            "write off again": 409,
        }

        # And only the ones accepted changed anything
        assert [e["event"] for e in events_of(sim.timeline(), invoice_id)][2:] == [
            "dispute_opened",
            "dunning_paused",
            "dispute_resolved",
            "dunning_resumed",
            "written_off",
            "lifecycle_ended",
        ]


# Promises to pay.


def test_kept_promise_holds_notices_and_the_payment_settles_with_nothing_else(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice, overdue, and the buyer's promise on 2 October to pay by 12 October
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 2, 12, tzinfo=UTC))
        promised = act(sim, "POST", f"/invoices/{invoice_id}/promise", {"pay_by": "2026-10-12"})

        # When the buyer pays on 10 October
        sim.advance_to(datetime(2026, 10, 10, 16, tzinfo=UTC))
        paid(sim, invoice_id, "2400.00", "pay-as-promised")
        sim.run_until_idle()

        # Then the overdue notice of 4 October never went out, and the payment ended it all
        assert at(promised["resume_at"]) == datetime(2026, 10, 13, 9, tzinfo=UTC)
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[2:] == [
            (REMINDER, "reminder_sent"),
            ("2026-10-02T12:00:00Z", "promise_recorded"),
            ("2026-10-02T12:00:00Z", "dunning_paused"),
            ("2026-10-10T16:00:00Z", "payment_received"),
            ("2026-10-10T16:00:00Z", "invoice_settled"),
            ("2026-10-10T16:00:00Z", "lifecycle_ended"),
        ]
        (recorded,) = events_of(timeline, invoice_id, "promise_recorded")
        assert recorded["detail"]["pay_by"] == "2026-10-12"
        assert [sent_at(m) for m in sim.emails()] == [at(REMINDER)]
        assert sim.finance_notices() == []


def test_broken_promise_tells_finance_the_day_after_and_the_ladder_resumes(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice, overdue, and the buyer's promise on 2 October to pay by 12 October
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 2, 12, tzinfo=UTC))
        act(sim, "POST", f"/invoices/{invoice_id}/promise", {"pay_by": "2026-10-12"})

        # When the promised day passes without payment, and the buyer pays after the formal notice
        sim.advance_to(datetime(2026, 10, 13, 8, 59, tzinfo=UTC))
        before_resume = sim.timeline()
        sim.advance_to(datetime(2026, 10, 17, 12, tzinfo=UTC))
        paid(sim, invoice_id, "2400.00", "pay-late")
        sim.run_until_idle()

        # Then nothing went out until the day after the promised date, at 09:00
        assert [
            (e["at"], e["event"])
            for e in events_of(before_resume, invoice_id, ACTS | {"promise_broken"})
        ] == [(REMINDER, "reminder_sent")]
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[2:] == [
            (REMINDER, "reminder_sent"),
            ("2026-10-02T12:00:00Z", "promise_recorded"),
            ("2026-10-02T12:00:00Z", "dunning_paused"),
            ("2026-10-13T09:00:00Z", "promise_broken"),
            ("2026-10-13T09:00:00Z", "dunning_resumed"),
            ("2026-10-13T09:00:00Z", "overdue_notice_sent"),
            (FORMAL, "formal_notice_sent"),
            (FORMAL, "order_hold_placed"),
            ("2026-10-17T12:00:00Z", "payment_received"),
            ("2026-10-17T12:00:00Z", "invoice_settled"),
            ("2026-10-17T12:00:00Z", "order_hold_released"),
            ("2026-10-17T12:00:00Z", "lifecycle_ended"),
        ]

        # And finance heard of the broken promise, once, for the whole balance
        (broken,) = events_of(timeline, invoice_id, "promise_broken")
        assert (broken["detail"]["pay_by"], broken["detail"]["amount_outstanding"]) == (
            "2026-10-12",
            "2400.00",
        )
        (notice,) = sim.finance_notices()
        assert NUMBER in notice["subject"]
        assert "2026-10-12" in notice["message"]
        assert notice["attributes"]["invoice_id"]["Value"] == invoice_id
        assert [sent_at(m) for m in sim.emails()] == [
            at(REMINDER),
            datetime(2026, 10, 13, 9, tzinfo=UTC),
            at(FORMAL),
        ]


# Customer pauses.


def test_customer_pause_holds_every_open_invoice_until_it_ends(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given two open invoices of the customer, due 1 and 10 October
    with money_simulation(START) as sim:
        first = send_invoice(sim, document("invoice.json"))["invoice_id"]
        second = send_invoice(sim, second_invoice("2026-10-10", "600.00"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 2, 12, tzinfo=UTC))

        # When credit control pauses the customer's dunning until 20 October, 09:00
        paused = act(
            sim,
            "POST",
            f"/customers/{CUSTOMER}/pause",
            {"reason": "restructuring talks", "until": "2026-10-20T09:00:00+00:00"},
        )
        sim.advance_to(datetime(2026, 10, 20, 8, 59, tzinfo=UTC))
        during = sim.timeline()
        emails_during = sim.emails()
        sim.advance_to(datetime(2026, 10, 21, 12, tzinfo=UTC))
        paid(sim, first, "2400.00", "pay-first")
        paid(sim, second, "600.00", "pay-second")
        sim.run_until_idle()

        # Then both invoices were paused, and nothing went out for either until the pause ended
        assert sorted(paused["invoices"]) == sorted([first, second])
        for invoice_id in (first, second):
            (pause,) = events_of(during, invoice_id, "dunning_paused")
            assert pause["at"] == "2026-10-02T12:00:00Z"
            assert pause["detail"]["reason"] == "customer_pause"
            assert at(pause["detail"]["until"]) == datetime(2026, 10, 20, 9, tzinfo=UTC)
        assert [e["at"] for e in events_of(during, event=ACTS)] == [REMINDER]
        assert [sent_at(m) for m in emails_during] == [at(REMINDER)]

        # And at its end each resumed with only the stage now due for it
        timeline = sim.timeline()
        resumed = "2026-10-20T09:00:00Z"
        assert story_of(timeline, first)[3:] == [
            ("2026-10-02T12:00:00Z", "dunning_paused"),
            (resumed, "dunning_resumed"),
            (resumed, "formal_notice_sent"),
            (resumed, "order_hold_placed"),
            ("2026-10-21T12:00:00Z", "payment_received"),
            ("2026-10-21T12:00:00Z", "invoice_settled"),
            ("2026-10-21T12:00:00Z", "order_hold_released"),
            ("2026-10-21T12:00:00Z", "lifecycle_ended"),
        ]
        assert story_of(timeline, second)[2:] == [
            ("2026-10-02T12:00:00Z", "dunning_paused"),
            (resumed, "dunning_resumed"),
            (resumed, "overdue_notice_sent"),
            ("2026-10-21T12:00:00Z", "payment_received"),
            ("2026-10-21T12:00:00Z", "invoice_settled"),
            ("2026-10-21T12:00:00Z", "lifecycle_ended"),
        ]
        (first_ended,) = events_of(timeline, first, "lifecycle_ended")
        (second_ended,) = events_of(timeline, second, "lifecycle_ended")
        assert first_ended["detail"]["skipped_stages"] == ["overdue_notice"]
        assert second_ended["detail"]["skipped_stages"] == ["reminder"]
        assert [sent_at(m) for m in sim.emails()] == [at(REMINDER), at(resumed), at(resumed)]


def test_ending_a_customer_pause_early_resumes_dunning_at_once(
    send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice, and the customer paused on 2 October until 30 October
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 2, 12, tzinfo=UTC))
        act(
            sim,
            "POST",
            f"/customers/{CUSTOMER}/pause",
            {"reason": "payment run pending", "until": "2026-10-30T09:00:00+00:00"},
        )

        # When credit control ends the pause on 8 October, and the buyer pays after the formal
        # notice
        sim.advance_to(datetime(2026, 10, 8, 12, tzinfo=UTC))
        ended_pause = act(sim, "DELETE", f"/customers/{CUSTOMER}/pause", {})
        sim.advance_to(datetime(2026, 10, 17, 12, tzinfo=UTC))
        paid(sim, invoice_id, "2400.00", "pay-after-pause")
        sim.run_until_idle()

        # Then dunning resumed at that instant with the overdue notice, and went on as usual
        assert ended_pause["invoices"] == [invoice_id]
        timeline = sim.timeline()
        assert story_of(timeline, invoice_id)[2:] == [
            (REMINDER, "reminder_sent"),
            ("2026-10-02T12:00:00Z", "dunning_paused"),
            ("2026-10-08T12:00:00Z", "dunning_resumed"),
            ("2026-10-08T12:00:00Z", "overdue_notice_sent"),
            (FORMAL, "formal_notice_sent"),
            (FORMAL, "order_hold_placed"),
            ("2026-10-17T12:00:00Z", "payment_received"),
            ("2026-10-17T12:00:00Z", "invoice_settled"),
            ("2026-10-17T12:00:00Z", "order_hold_released"),
            ("2026-10-17T12:00:00Z", "lifecycle_ended"),
        ]
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert ended["detail"]["skipped_stages"] == []


# Holds across invoices.


def test_customer_hold_stands_until_the_last_overdue_invoice_is_paid(
    send_invoice: Send, events_of: Select
) -> None:
    # Given two invoices of one customer, due 1 and 5 October, both past their formal notices
    with money_simulation(START) as sim:
        first = send_invoice(sim, document("invoice.json"))["invoice_id"]
        second = send_invoice(sim, second_invoice("2026-10-05", "600.00"))["invoice_id"]
        sim.advance_to(datetime(2026, 10, 22, 12, tzinfo=UTC))
        both = sim.hold_status(CUSTOMER).json()

        # When part of the second is paid, then all of the first
        paid(sim, second, "100.00", "pay-second-part")
        after_part = sim.hold_status(CUSTOMER).json()
        paid(sim, first, "2400.00", "pay-first")
        after_first = sim.hold_status(CUSTOMER).json()
        released_first = events_of(sim.timeline(), first, "order_hold_released")

        # And two days later the rest of the second
        sim.advance_to(datetime(2026, 10, 24, 12, tzinfo=UTC))
        paid(sim, second, "500.00", "pay-second-rest")
        sim.run_until_idle()

        # Then both invoices held the customer, and a part payment changed nothing
        assert both["on_hold"] is True
        assert sorted(r["invoice_id"] for r in both["reasons"]) == sorted([first, second])
        assert after_part == both

        # And paying the first left the customer on hold for the second
        assert after_first["on_hold"] is True
        assert [(r["reason"], r["invoice_id"]) for r in after_first["reasons"]] == [
            ("invoice_overdue", second)
        ]
        (released,) = released_first
        assert released["at"] == "2026-10-22T12:00:00Z"
        assert released["detail"]["customer_released"] is False
        assert released["detail"]["remaining_reasons"] == [f"invoice_overdue#{second}"]

        # And paying the second released the customer, only then
        timeline = sim.timeline()
        releases = events_of(timeline, event="order_hold_released")
        assert [(e["invoice_id"], e["at"], e["detail"]["customer_released"]) for e in releases] == [
            (first, "2026-10-22T12:00:00Z", False),
            (second, "2026-10-24T12:00:00Z", True),
        ]
        assert sim.hold_status(CUSTOMER).json() == {
            "customer_id": CUSTOMER,
            "on_hold": False,
            "reasons": [],
        }


# Races with a milestone.


@pytest.mark.parametrize(
    "instant",
    [
        pytest.param(OVERDUE, id="overdue-notice"),
        pytest.param(FORMAL, id="formal-notice"),
        pytest.param(ESCALATION, id="escalation"),
    ],
)
def test_payment_at_a_milestone_instant_is_never_followed_by_a_notice_or_hold(
    instant: str, send_invoice: Send, story_of: Story, events_of: Select
) -> None:
    # Given the base invoice, and its full payment posted at the very instant a stage falls due
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(at(instant))

        # When the payment and the stage's execution run at once
        body = paid(sim, invoice_id, "2400.00", "pay-at-milestone")
        sim.run_until_idle()

        # Then after the payment the history records only its settlement and the end
        assert body["settled"] is True
        timeline = sim.timeline()
        story = story_of(timeline, invoice_id)
        assert set(events_after(story, "payment_received")) <= {
            "invoice_settled",
            "order_hold_released",
            "lifecycle_ended",
        }, story
        quoted = [
            e["detail"]["amount_outstanding"]
            for e in events_of(timeline, invoice_id, ACTS)
            if "amount_outstanding" in e["detail"]
        ]
        assert set(quoted) <= {"2400.00"}, quoted
        (ended,) = events_of(timeline, invoice_id, "lifecycle_ended")
        assert (ended["at"], ended["detail"]["outcome"]) == (instant, "PAID")
        assert sim.hold_status(CUSTOMER).json()["on_hold"] is False
        assert sim.stack.failures == []


@pytest.mark.parametrize(
    "instant",
    [
        pytest.param(OVERDUE, id="overdue-notice"),
        pytest.param(FORMAL, id="formal-notice"),
        pytest.param(ESCALATION, id="escalation"),
    ],
)
def test_dispute_at_a_milestone_instant_is_never_followed_by_a_notice_or_hold(
    instant: str, send_invoice: Send, story_of: Story
) -> None:
    # Given the base invoice, and a dispute opened at the very instant a stage falls due
    with money_simulation(START) as sim:
        invoice_id = send_invoice(sim, document("invoice.json"))["invoice_id"]
        sim.advance_to(at(instant))

        # When the dispute and the stage's execution run at once, and the dispute stands for weeks
        act(sim, "POST", f"/invoices/{invoice_id}/dispute", {"reason": "price not as agreed"})
        sim.advance_to(datetime(2026, 11, 20, 12, tzinfo=UTC))
        story = story_of(sim.timeline(), invoice_id)
        hold = sim.hold_status(CUSTOMER).json()
        paid(sim, invoice_id, "2400.00", "pay-disputed")
        sim.run_until_idle()

        # Then after the dispute nothing is sent, escalated, claimed or held
        after = events_after(story, "dispute_opened")
        assert [name for name in after if name in ACTS] == [], after

        # And the history never says dunning resumed while the dispute stood
        assert after == ["dunning_paused"], after

        # And the customer is on hold only if the formal notice went out before the dispute
        names = [name for _, name in story]
        held_before = "order_hold_placed" in names[: names.index("dispute_opened")]
        assert hold["on_hold"] is held_before
        assert sim.stack.failures == []
