"""The HTTP edges on the local stack: what each webhook answers; a refusal changes nothing."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support_policy import approving

from arflow.logic import webhook_auth
from arflow.logic.documents.stripe import SIGNATURE_HEADER, sign_stripe_payload
from arflow_local.simulation import Simulation, simulation

pytestmark = pytest.mark.e2e

EVENTS = Path(__file__).resolve().parents[1] / "events"
START = datetime(2026, 9, 1, 8, tzinfo=UTC)
NUMBER = "E2E-2026-0001"


def stored_count(sim: Simulation, table: str) -> int:
    dynamodb = sim.stack.client("dynamodb")
    return int(dynamodb.scan(TableName=sim.stack.ref(table), Select="COUNT")["Count"])


def executions(sim: Simulation) -> list[dict[str, Any]]:
    stepfunctions = sim.stack.client("stepfunctions")
    listed = stepfunctions.list_executions(stateMachineArn=sim.stack.ref("InvoiceLifecycle"))
    return list(listed["executions"])


def assert_nothing_stored(sim: Simulation) -> None:
    for table in ("InvoicesTable", "CustomersTable", "EventsTable", "PaymentsTable"):
        assert stored_count(sim, table) == 0, table
    assert executions(sim) == []
    assert sim.emails() == []


def signed_headers(sim: Simulation, body: bytes, timestamp: datetime) -> dict[str, str]:
    secret = sim.stack.secret("WebhookSecret")
    headers = webhook_auth.sign(body, secret, int(timestamp.timestamp()))
    return {**headers, "content-type": "application/json"}


def balance_of(sim: Simulation, invoice_id: str, stored_invoice: Any) -> str:
    return str(stored_invoice(sim, invoice_id).balance)


@pytest.mark.parametrize("channel", ["canonical", "stripe"])
def test_same_document_delivered_twice_starts_one_lifecycle(
    channel: str, invoice_json: Callable[..., bytes], events_of: Any
) -> None:
    # Given a document its sender delivers twice, the second time an hour later
    if channel == "canonical":
        body = invoice_json()
    else:
        body = (EVENTS / "stripe_invoice_finalized.json").read_bytes()

    def deliver(sim: Simulation) -> Any:
        if channel == "canonical":
            return sim.post_document(body, "application/json")
        return sim.post_stripe_event(body)

    with simulation(START, policy_text=approving("{}")) as sim:
        first = deliver(sim)
        sim.advance_to(START + timedelta(hours=1))

        # When it arrives again
        second = deliver(sim)

        # Then both deliveries are acknowledged, as one invoice with one execution
        assert (first.status, first.json()["status"]) == (202, "accepted")
        assert (second.status, second.json()["status"]) == (200, "duplicate")
        invoice_id = first.json()["invoice_id"]
        assert second.json()["invoice_id"] == invoice_id
        assert second.json()["execution_arn"] == first.json()["execution_arn"]
        assert [e["executionArn"] for e in executions(sim)] == [first.json()["execution_arn"]]
        assert stored_count(sim, "InvoicesTable") == 1

        # And the history shows the redelivery, and one credit check
        timeline = sim.timeline()
        received = events_of(timeline, invoice_id, "invoice_received")
        assert [(e["at"], e["detail"].get("redelivery", False)) for e in received] == [
            ("2026-09-01T08:00:00Z", False),
            ("2026-09-01T09:00:00Z", True),
        ]
        assert len(events_of(timeline, invoice_id, "credit_checked")) == 1


def test_same_number_with_other_content_is_a_conflict_and_changes_nothing(
    invoice_json: Callable[..., bytes], events_of: Any, stored_invoice: Any
) -> None:
    # Given an accepted invoice
    with simulation(START, policy_text=approving("{}")) as sim:
        first = sim.post_document(invoice_json(), "application/json")
        invoice_id = first.json()["invoice_id"]

        # When the same supplier sends the same number with another amount
        changed = invoice_json(total_amount="1200.00", tax_amount="240.00")
        second = sim.post_document(changed, "application/json")

        # Then it is refused as a conflict
        assert second.status == 409
        assert second.json()["error"] == "InvoiceConflictError"
        assert NUMBER in second.json()["message"]

        # And the stored invoice, its history and its one execution are as before
        stored = stored_invoice(sim, invoice_id)
        assert (str(stored.total_amount), str(stored.balance)) == ("1000.00", "1000.00")
        assert len(events_of(sim.timeline(), invoice_id, "invoice_received")) == 1
        assert len(executions(sim)) == 1


def _canonical(**changes: Any) -> Callable[[Callable[..., bytes]], tuple[bytes, str]]:
    return lambda build: (build(**changes), "application/json")


def _raw(body: bytes, content_type: str) -> Callable[[Callable[..., bytes]], tuple[bytes, str]]:
    return lambda _: (body, content_type)


@pytest.mark.parametrize(
    ("request_body", "status", "error", "fields"),
    [
        pytest.param(
            _raw(b'{"invoice_number": "E2E-2026-0001", "currency": ', "application/json"),
            400,
            "malformed_document",
            None,
            id="malformed-json",
        ),
        pytest.param(
            _raw(b"<Invoice><cbc:ID>E2E-2026-0001</cbc:ID></Invoic>", "application/xml"),
            400,
            "malformed_document",
            None,
            id="malformed-xml",
        ),
        pytest.param(
            _raw((EVENTS / "xml_external_entity.xml").read_bytes(), "application/xml"),
            400,
            "malformed_document",
            None,
            id="xml-with-entities",
        ),
        pytest.param(
            _raw((EVENTS / "ubl_order.xml").read_bytes(), "application/xml"),
            422,
            "unsupported_document",
            None,
            id="ubl-order",
        ),
        pytest.param(
            _canonical(currency="XYZ"), 422, "invalid_document", ["currency"], id="currency"
        ),
        pytest.param(
            _canonical(total_amount="0.00", tax_amount=None, lines=None),
            422,
            "invalid_document",
            ["total_amount"],
            id="zero-amount",
        ),
        pytest.param(
            _canonical(due_date="2026-08-15"),
            422,
            "invalid_document",
            ["due_date"],
            id="due-before-issue",
        ),
        pytest.param(
            _canonical(customer={"email": "payables at kestrel", "country": "gb"}),
            422,
            "invalid_document",
            ["customer.email", "customer.country"],
            id="bad-buyer-fields",
        ),
    ],
)
def test_bad_document_is_refused_with_its_problems_and_nothing_is_stored(
    request_body: Callable[[Callable[..., bytes]], tuple[bytes, str]],
    status: int,
    error: str,
    fields: list[str] | None,
    invoice_json: Callable[..., bytes],
) -> None:
    # Given a document that is not a valid invoice
    body, content_type = request_body(invoice_json)
    with simulation(START, policy_text=approving("{}")) as sim:
        # When it is posted, correctly signed
        answer = sim.post_document(body, content_type)

        # Then it is refused with what is wrong, in the one error shape
        assert answer.status == status, answer.body
        refusal = answer.json()
        assert set(refusal) == {"error", "message", "problems"}
        assert refusal["error"] == error
        assert refusal["message"]
        assert all(set(p) == {"field", "message"} and p["message"] for p in refusal["problems"])
        if fields is not None:
            assert [p["field"] for p in refusal["problems"]] == fields

        # And nothing is stored and no lifecycle is started
        assert_nothing_stored(sim)


@pytest.mark.parametrize("fault", ["unsigned", "stale", "tampered", "wrong-secret"])
def test_unauthenticated_invoice_is_refused_and_nothing_is_stored(
    fault: str, invoice_json: Callable[..., bytes]
) -> None:
    # Given an invoice posted without a valid, fresh signature
    body = invoice_json()
    with simulation(START, policy_text=approving("{}")) as sim:
        if fault == "unsigned":
            headers = {"content-type": "application/json"}
        elif fault == "stale":
            headers = signed_headers(sim, body, START - timedelta(minutes=10))
        elif fault == "tampered":
            headers = signed_headers(sim, body, START)
            tampered = body.replace(b'"1000.00"', b'"10.00"')
            assert tampered != body
            body = tampered
        else:
            headers = {
                **webhook_auth.sign(body, "not-the-secret", int(START.timestamp())),
                "content-type": "application/json",
            }

        # When it reaches the ingest webhook
        answer = sim.stack.request("POST", "/invoices", headers, body)

        # Then it is refused as unauthenticated, and nothing changed
        assert answer.status == 401
        assert answer.json()["error"] == "WebhookAuthError"
        assert_nothing_stored(sim)


def test_stripe_event_with_a_wrong_signature_is_refused() -> None:
    # Given a Stripe invoice event signed with another endpoint's secret
    body = (EVENTS / "stripe_invoice_finalized.json").read_bytes()
    with simulation(START, policy_text=approving("{}")) as sim:
        header = sign_stripe_payload(body, "whsec_someone_else", int(START.timestamp()))

        # When it reaches the Stripe webhook
        answer = sim.stack.request(
            "POST",
            "/webhooks/stripe",
            {"content-type": "application/json", SIGNATURE_HEADER: header},
            body,
        )

        # Then it is refused, and nothing changed
        assert answer.status == 401
        assert answer.json()["error"] == "WebhookAuthError"
        assert_nothing_stored(sim)


def test_tampered_payment_is_refused_and_the_balance_is_unchanged(
    invoice_json: Callable[..., bytes], events_of: Any, stored_invoice: Any
) -> None:
    # Given an accepted invoice, and a payment of EUR 10.00 whose body is changed to EUR 1000.00
    with simulation(START, policy_text=approving("{}")) as sim:
        invoice_id = sim.post_document(invoice_json(), "application/json").json()["invoice_id"]
        signed = json.dumps(
            {"payment_id": "p-1", "invoice_id": invoice_id, "amount": "10.00", "currency": "EUR"}
        ).encode()
        headers = signed_headers(sim, signed, START)
        sent = signed.replace(b'"10.00"', b'"1000.00"')

        # When it reaches the payment webhook
        answer = sim.stack.request("POST", "/payments", headers, sent)

        # Then it is refused, and the invoice still owes everything
        assert answer.status == 401
        assert balance_of(sim, invoice_id, stored_invoice) == "1000.00"
        assert events_of(sim.timeline(), invoice_id, "payment_received") == []
        assert stored_count(sim, "PaymentsTable") == 0


def test_payment_in_another_currency_is_refused(
    invoice_json: Callable[..., bytes], events_of: Any, stored_invoice: Any
) -> None:
    # Given an invoice in EUR
    with simulation(START, policy_text=approving("{}")) as sim:
        invoice_id = sim.post_document(invoice_json(), "application/json").json()["invoice_id"]

        # When a payment for it arrives in SEK
        answer = sim.post_payment(
            {
                "payment_id": "p-sek",
                "invoice_id": invoice_id,
                "amount": "1000.00",
                "currency": "SEK",
            }
        )

        # Then it is refused as unprocessable, and nothing is applied
        assert answer.status == 422
        assert answer.json()["error"] == "PaymentRejectedError"
        assert balance_of(sim, invoice_id, stored_invoice) == "1000.00"
        assert events_of(sim.timeline(), invoice_id, "payment_received") == []
        assert stored_count(sim, "PaymentsTable") == 0


def test_payment_for_an_invoice_not_yet_received_is_held() -> None:
    # Given a stack that holds no invoice
    with simulation(START, policy_text=approving("{}")) as sim:
        # When a payment names an invoice nobody has sent yet
        answer = sim.post_payment(
            {
                "payment_id": "p-x",
                "invoice_id": "inv_0000000000",
                "amount": "5.00",
                "currency": "EUR",
            }
        )

        # Then it is kept for that invoice, and nothing is applied to anything yet
        assert answer.status == 202
        assert answer.json()["status"] == "held"
        assert stored_count(sim, "PaymentsTable") == 1
        assert sim.timeline() == []


def test_same_payment_twice_is_applied_once(
    invoice_json: Callable[..., bytes], events_of: Any, stored_invoice: Any
) -> None:
    # Given an invoice of EUR 1,000.00 and a payment of EUR 300.00 against it
    with simulation(START, policy_text=approving("{}")) as sim:
        invoice_id = sim.post_document(invoice_json(), "application/json").json()["invoice_id"]
        payment = {
            "payment_id": "p-300",
            "invoice_id": invoice_id,
            "amount": "300.00",
            "currency": "EUR",
        }

        # When the payment is delivered twice
        first = sim.post_payment(payment)
        second = sim.post_payment(payment)

        # Then it counts once
        assert (first.status, first.json()["status"], first.json()["balance"]) == (
            201,
            "applied",
            "700.00",
        )
        assert (second.status, second.json()["status"], second.json()["balance"]) == (
            200,
            "duplicate",
            "700.00",
        )
        assert balance_of(sim, invoice_id, stored_invoice) == "700.00"
        received = events_of(sim.timeline(), invoice_id, "payment_received")
        assert [(e["detail"]["payment_id"], e["detail"]["balance"]) for e in received] == [
            ("p-300", "700.00")
        ]


def test_hold_status_of_an_unknown_customer_is_not_found() -> None:
    # Given a stack that knows no customer
    with simulation(START, policy_text=approving("{}")) as sim:
        # When an order system asks whether CUST-NOBODY is on hold
        answer = sim.hold_status("CUST-NOBODY")

        # Then the customer is not found
        assert answer.status == 404
        assert answer.json() == {
            "error": "UnknownCustomerError",
            "message": "no customer CUST-NOBODY",
        }
