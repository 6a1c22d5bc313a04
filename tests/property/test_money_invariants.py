"""Interleavings of money events and lifecycle steps for several invoices of one customer.

Each generated history runs against the real DynamoDB conditions (on moto) through the same logic
functions the Lambda handlers call, and four invariants are checked after every history:
nothing goes out for an invoice after it was settled or while it is disputed; the customer's hold
is on exactly when a reason stands; what was applied equals what was received; nothing is applied
twice.
"""

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from arflow.config import function_environment
from arflow.logic import account, dunning, lifecycle
from arflow.logic.intake import receive_document
from arflow.logic.settlement import receive_payment
from arflow.models.invoice import InvoiceDocument, Party, Payment
from arflow.models.policy import Stage
from arflow.services import services
from arflow_local.simulation import simulation

START = datetime(2026, 9, 1, 8, tzinfo=UTC)
RUNS = itertools.count()
AMOUNTS = [Decimal("100.00"), Decimal("250.00"), Decimal("75.50")]
# Side effects that must never follow a settlement, or happen while a dispute stands.
CUSTOMER_FACING = {
    "reminder_sent",
    "overdue_notice_sent",
    "formal_notice_sent",
    "order_hold_placed",
    "claim_submitted",
    "insurer_notified",
}

invoice_index = st.integers(min_value=0, max_value=len(AMOUNTS) - 1)
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("300"), places=2)
operation = st.one_of(
    st.tuples(st.just("pay"), invoice_index, money, st.integers(0, 3)),
    st.tuples(st.just("credit"), invoice_index, money, st.just(0)),
    st.tuples(st.just("dispute"), invoice_index, st.just(Decimal(0)), st.just(0)),
    st.tuples(st.just("resolve"), invoice_index, st.just(Decimal(0)), st.just(0)),
    st.tuples(st.just("notice"), invoice_index, st.just(Decimal(0)), st.integers(0, 2)),
    st.tuples(st.just("hold"), invoice_index, st.just(Decimal(0)), st.just(0)),
    st.tuples(st.just("escalate"), invoice_index, st.just(Decimal(0)), st.just(0)),
)
NOTICE_STAGES = [Stage.REMINDER, Stage.OVERDUE_NOTICE, Stage.FORMAL_NOTICE]


def _customer(run: int) -> Party:
    return Party(id=f"C-{run}", name="Property Test BV", email="ap@property.example", country="NL")


def _document(
    run: int, number: int, amount: Decimal, kind: str = "invoice", **extra: object
) -> InvoiceDocument:
    return InvoiceDocument.model_validate(
        {
            "document_type": kind,
            "invoice_number": f"P{run}-{number}",
            "supplier": {"id": "SUP-PROP", "name": "Supplier Ltd"},
            "customer": _customer(run).model_dump(exclude_none=True),
            "issue_date": date(2026, 9, 1),
            "due_date": date(2026, 10, 1),
            "currency": "EUR",
            "total_amount": amount,
            **extra,
        }
    )


def _run(run, operations):
    """Apply the operations in order, one virtual hour apart; return what was received."""
    deps = services()
    received: dict[str, Decimal] = {}
    ids = []
    for number, amount in enumerate(AMOUNTS):
        document = _document(run, number, amount)
        # The invoice is stored as intake stores it; its lifecycle is driven by hand here.
        deps.invoices.put_new(_record(deps, document))
        ids.append(document.invoice_id())
    credit_numbers = iter(range(1000))

    for step, (kind, index, amount, variant) in enumerate(operations):
        now = START + timedelta(days=30, hours=step)
        invoice_id = ids[index]
        if kind == "pay":
            # The same payment id can arrive more than once (variant picks one of a few ids).
            payment_id = f"pay-{run}-{index}-{variant}"
            result = receive_payment(
                deps,
                Payment(
                    payment_id=payment_id, invoice_id=invoice_id, amount=amount, currency="EUR"
                ),
                now,
            )
            if result.status == "applied":
                received[payment_id] = amount
        elif kind == "credit":
            note = _document(
                run,
                next(credit_numbers) + 100,
                amount,
                "credit_note",
                billing_reference=f"P{run}-{index}",
            )
            receive_document(deps, note, now)
        elif kind == "dispute":
            try:
                account.open_dispute(deps, invoice_id, "contested", None, now)
            except account.InvoiceNotOpenError:
                pass
        elif kind == "resolve":
            try:
                account.resolve_dispute(deps, invoice_id, "settled between us", None, now)
            except account.InvoiceNotOpenError:
                pass
        elif kind == "notice":
            dunning.send_customer_notice(deps, invoice_id, NOTICE_STAGES[variant], now)
        elif kind == "hold":
            lifecycle.hold_new_orders(deps, invoice_id, now)
        elif kind == "escalate":
            dunning.escalate_to_finance(deps, invoice_id, now)
    return ids, received


def _record(deps, document):
    from arflow.models.records import DueDateSource, InvoiceRecord

    deps.customers.record_buyer(document.customer, "EUR", START, deps.policy())
    return InvoiceRecord(
        invoice_id=document.invoice_id(),
        customer_id=document.customer.id,
        supplier_id=document.supplier.id,
        invoice_number=document.invoice_number,
        document=document,
        content_hash=document.content_hash(),
        currency="EUR",
        total_amount=document.total_amount,
        balance=document.total_amount,
        issue_date=document.issue_date,
        due_date=document.due_date,
        due_date_source=DueDateSource.INVOICE,
        insured=True,
        received_at=START,
    )


@pytest.fixture(scope="module")
def stack():
    """One local stack for every example; each example has its own customer and invoices."""
    with simulation(START) as sim:
        environment = sim.stack.functions[sim.stack.ref("LifecycleFunction")].environment
        with function_environment(environment):
            yield sim


@settings(
    max_examples=25,
    deadline=None,
    # Each example boots the stack; shrinking would take minutes, so a failure is shown as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(operation, min_size=1, max_size=14))
def test_money_and_notices_stay_consistent_in_any_order(stack, operations):
    run = next(RUNS)
    ids, received = _run(run, operations)
    deps = services()
    invoices = {i: deps.invoices.require(i) for i in ids}
    customer = deps.customers.get(_customer(run).id)
    history = sorted(
        (e for e in stack.timeline() if e["invoice_id"] in ids or _ours(e, run)),
        key=lambda e: e["at"],
    )

    # Then nothing customer-facing happened after an invoice was settled
    for invoice_id in ids:
        events = [e for e in history if e["invoice_id"] == invoice_id]
        settled_at = next((e["at"] for e in events if e["event"] == "invoice_settled"), None)
        if settled_at:
            late = [e for e in events if e["event"] in CUSTOMER_FACING and e["at"] > settled_at]
            assert not late, f"sent after settlement: {late}"

        # ... nor while a dispute stood
        disputed = False
        for event in events:
            if event["event"] == "dispute_opened":
                disputed = True
            elif event["event"] == "dispute_resolved":
                disputed = False
            elif disputed:
                assert event["event"] not in CUSTOMER_FACING, f"sent while disputed: {event}"

    # And the hold is on exactly when a reason stands, and every reason is an open invoice's
    assert customer is not None
    assert customer.on_hold == bool(customer.holds)
    for hold in customer.holds.values():
        if hold.reason == "invoice_overdue":
            assert invoices[hold.invoice_id].is_open, f"hold kept for a closed invoice {hold}"

    # And what was applied (to invoices, and as credit) equals what was received
    applied = sum((i.amount_paid for i in invoices.values()), Decimal(0))
    credit = customer.credit_balance.get("EUR", Decimal(0))
    credited = sum((i.amount_credited for i in invoices.values()), Decimal(0))
    notes = sum(
        (Decimal(e["detail"]["amount"]) for e in history if e["event"] == "credit_applied"),
        Decimal(0),
    )
    assert applied + credited + credit == sum(received.values(), Decimal(0)) + notes

    # And nothing was applied twice: each payment id appears once, balances never negative
    payments = [e["detail"]["payment_id"] for e in history if e["event"] == "payment_received"]
    assert len(payments) == len(set(payments))
    for invoice in invoices.values():
        assert invoice.balance >= 0
        assert (
            invoice.balance == invoice.total_amount - invoice.amount_paid - invoice.amount_credited
        )


def _ours(event: dict, run: int) -> bool:
    """Credit notes kept as customer credit are filed under their own id; match them by number."""
    detail = event.get("detail") or {}
    return str(detail.get("credit_note", "")).startswith(f"P{run}-")
