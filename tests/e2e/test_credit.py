"""Credit decisions through the local stack: assessment, limits, exposure, reviews, overrides."""

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from arflow.config import function_environment
from arflow.models.invoice import Party
from arflow.services import services
from arflow_local.simulation import Simulation, simulation

START = datetime(2026, 9, 1, 8, tzinfo=UTC)
CUSTOMER = "CUST-KESTREL"


def report(**changes: Any) -> dict[str, Any]:
    return {
        "customer_id": CUSTOMER,
        "provider": "Test Credit Bureau",
        "reference": "TCB-1",
        "grade": "A",
        "score": 85,
        "recommended_limit": "50000.00",
        "currency": "EUR",
        "report_date": "2026-08-15",
    } | changes


def load(sim: Simulation, tmp_path: Path, *reports: dict[str, Any]) -> None:
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump(list(reports)), encoding="utf-8")
    sim.load_credit_reports(path)


def checked(sim: Simulation, invoice_id: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in sim.timeline()
        if e["invoice_id"] == invoice_id and e["event"] == "credit_checked"
    ]
    return dict(event["detail"])


def test_new_buyer_with_a_good_report_gets_the_capped_first_limit(
    invoice_json: Callable[..., bytes], tmp_path: Path
) -> None:
    # Given a grade A report recommending EUR 50,000 for a buyer nobody has assessed before
    with simulation(START) as sim:
        load(sim, tmp_path, report())

        # When its first invoice (EUR 1,000.00) arrives
        invoice_id = sim.post_document(invoice_json(), "application/json").json()["invoice_id"]
        sim.advance_to(datetime(2026, 9, 2, tzinfo=UTC))

        # Then it is approved on the standard terms, with the policy's first limit of 20,000
        detail = checked(sim, invoice_id)
        assert detail["decision"] == "approve"
        assert detail["credit_limit"] == "20000.00"
        assert detail["new_customer"] is True
        assert detail["within_limit"] is True
        assert any("Test Credit Bureau" in reason for reason in detail["reasons"])
        # ... the limit change is in the customer's timeline, and no hold is placed
        changes = [e for e in sim.timeline() if e["event"] == "credit_limit_changed"]
        assert [e["detail"]["new_limit"] for e in changes] == ["20000.00"]
        assert sim.hold_status(CUSTOMER).json()["on_hold"] is False


def test_provider_with_no_report_refers_the_new_buyer_and_holds_its_orders(
    invoice_json: Callable[..., bytes],
) -> None:
    # Given a buyer the credit provider has no report on, and the default policy
    with simulation(START) as sim:
        # When its first invoice arrives
        invoice_id = sim.post_document(invoice_json(), "application/json").json()["invoice_id"]
        sim.advance_to(datetime(2026, 9, 2, tzinfo=UTC))

        # Then the decision is referred to finance with the reason, never approved
        detail = checked(sim, invoice_id)
        assert detail["decision"] == "refer"
        assert detail["provider_error"] == "the credit provider has no report on this company"
        assert detail["finance_message_id"]
        # ... and the unassessed buyer's new orders are held until finance decides
        reasons = {r["reason"] for r in sim.hold_status(CUSTOMER).json()["reasons"]}
        assert reasons == {"credit_referred", "credit_limit_exceeded"}
        assert any(
            n["attributes"]["kind"]["Value"] == "credit_alert" for n in sim.finance_notices()
        )


def test_insolvency_flag_declines_credit(
    invoice_json: Callable[..., bytes], tmp_path: Path
) -> None:
    # Given a report that flags insolvency proceedings
    with simulation(START) as sim:
        load(sim, tmp_path, report(risk_flags=["insolvency_proceedings"]))

        # When an invoice arrives
        invoice_id = sim.post_document(invoice_json(), "application/json").json()["invoice_id"]
        sim.advance_to(datetime(2026, 9, 2, tzinfo=UTC))

        # Then credit is declined, with a credit_declined hold
        assert checked(sim, invoice_id)["decision"] == "decline"
        reasons = {r["reason"] for r in sim.hold_status(CUSTOMER).json()["reasons"]}
        assert "credit_declined" in reasons


def test_grade_c_buyer_gets_shorter_terms_on_its_next_invoices(
    invoice_json: Callable[..., bytes], tmp_path: Path
) -> None:
    # Given a grade C report
    with simulation(START) as sim:
        load(sim, tmp_path, report(grade="C", score=52))

        # When an invoice arrives, and then one with no due date and no terms of its own
        first = sim.post_document(invoice_json(), "application/json").json()
        sim.advance_to(datetime(2026, 9, 3, tzinfo=UTC))
        second = sim.post_document(
            invoice_json(invoice_number="E2E-2026-0002", due_date=None, payment_terms=None),
            "application/json",
        ).json()

        # Then the first is approved on shorter terms of 14 days, which the second then takes
        detail = checked(sim, first["invoice_id"])
        assert detail["decision"] == "approve_shorter_terms"
        assert detail["payment_terms_days"] == 14
        assert second["due_date_source"] == "customer_terms"
        assert second["due_date"] == "2026-09-15"


def test_two_invoices_at_one_instant_cannot_both_pass_a_limit_only_one_fits(
    invoice_json: Callable[..., bytes], tmp_path: Path
) -> None:
    # Given a buyer whose limit will be EUR 15,000 (grade A, recommended 15,000)
    with simulation(START) as sim:
        load(sim, tmp_path, report(recommended_limit="15000.00"))

        # When two invoices of EUR 10,000.00 arrive at the same instant
        bodies = [
            invoice_json(invoice_number=f"E2E-2026-10{n}", total_amount="10000.00") for n in (1, 2)
        ]
        ids = [sim.post_document(b, "application/json").json()["invoice_id"] for b in bodies]
        sim.advance_to(datetime(2026, 9, 2, tzinfo=UTC))

        # Then exactly one is within the limit; the other puts the orders on hold
        within = sorted(checked(sim, i)["within_limit"] for i in ids)
        assert within == [False, True]
        reasons = {r["reason"] for r in sim.hold_status(CUSTOMER).json()["reasons"]}
        assert reasons == {"credit_limit_exceeded"}


def test_exposure_reservations_racing_in_threads_let_only_what_fits_through() -> None:
    # Given a customer with nothing open, under a EUR 15,000 limit
    with simulation(START) as sim:
        environment = next(iter(sim.stack.functions.values())).environment
        with function_environment(environment):
            deps = services()
            buyer = Party(id=CUSTOMER, name="Kestrel Marine Ltd")
            deps.customers.record_buyer(buyer, "EUR", START, deps.policy())
        results: list[bool] = []

        def reserve(number: int) -> None:
            with function_environment(environment):
                results.append(
                    services().customers.reserve_exposure(
                        CUSTOMER, f"inv_race_{number}", Decimal("10000"), Decimal("15000")
                    )
                )

        # When eight reservations of EUR 10,000 race each other
        threads = [threading.Thread(target=reserve, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        # Then exactly one fits, and every one of them is counted in the exposure
        assert sorted(results) == [False] * 7 + [True]
        with function_environment(environment):
            customer = services().customers.get(CUSTOMER)
            assert customer is not None
            assert customer.exposure == Decimal("80000")
            assert len(customer.exposure_invoices) == 8


def test_a_new_buyers_first_three_months_end_in_a_review_that_raises_its_limit(
    invoice_json: Callable[..., bytes], tmp_path: Path
) -> None:
    # Given a grade A buyer on its capped first limit, paying each monthly invoice on time
    scenario = {
        "title": "first three months",
        "credit_reports": "reports.yaml",
        "documents": [
            {
                "invoice": json.loads(
                    invoice_json(
                        invoice_number=f"E2E-M{m}",
                        issue_date=f"2026-0{m}-01",
                        due_date=f"2026-0{m + 1}-01",
                    )
                )
            }
            for m in (6, 7, 8)
        ],
        "events": [
            {"at": "due-2", "kind": "payment", "invoice": f"E2E-M{m}", "amount": "balance"}
            for m in (6, 7, 8)
        ],
    }
    (tmp_path / "reports.yaml").write_text(
        yaml.safe_dump([report(report_date="2026-05-20")]), encoding="utf-8"
    )
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")

    # When the three months play out
    from arflow_local.run import run
    from arflow_local.scenario import plan_inputs

    result = run(plan_inputs([tmp_path / "scenario.yaml"]), tmp_path / "out")

    # Then the first limit was the capped 20,000, and the review 90 days on raised it by the
    # policy's step of 25 %, to 25,000, because every invoice was paid on time
    reviews = [e for e in result.timeline if e["event"] == "credit_review_completed"]
    assert reviews, "no review ran"
    first = reviews[0]["detail"]
    assert reviews[0]["at"] == "2026-08-30T06:00:00Z"
    assert (first["old_limit"], first["new_limit"], first["direction"]) == (
        "20000.00",
        "25000.00",
        "raised",
    )
    changes = [
        e["detail"]["new_limit"] for e in result.timeline if e["event"] == "credit_limit_changed"
    ]
    assert changes == ["20000.00", "25000.00"]
    assert result.failures == 0


def test_credit_controller_override_lifts_the_hold_and_is_recorded(
    invoice_json: Callable[..., bytes],
) -> None:
    # Given a buyer referred and held for want of a report
    with simulation(START) as sim:
        sim.post_document(invoice_json(), "application/json")
        sim.advance_to(datetime(2026, 9, 2, tzinfo=UTC))
        assert sim.hold_status(CUSTOMER).json()["on_hold"] is True

        # When finance sets a limit and lifts the credit holds, saying who and why
        answer = sim.post_action(
            "POST",
            f"/customers/{CUSTOMER}/credit",
            {"credit_limit": "5000.00", "lift_holds": True, "reason": "known buyer", "by": "m.ng"},
        )

        # Then the hold is gone, and the override is in the customer's timeline with who and why
        assert answer.status == 200
        assert sim.hold_status(CUSTOMER).json() == {
            "customer_id": CUSTOMER,
            "on_hold": False,
            "reasons": [],
        }
        (override,) = [e for e in sim.timeline() if e["event"] == "credit_override"]
        assert override["invoice_id"] == f"customer:{CUSTOMER}"
        assert override["detail"]["new_limit"] == "5000.00"
        assert override["detail"]["by"] == "m.ng"
        assert override["detail"]["reason"] == "known buyer"
        assert override["detail"]["holds_lifted"] == ["credit_referred"]


def test_an_override_without_who_or_why_is_refused(invoice_json: Callable[..., bytes]) -> None:
    # Given a known customer
    with simulation(START) as sim:
        sim.post_document(invoice_json(), "application/json")

        # When an override names no one and gives no reason
        answer = sim.post_action("POST", f"/customers/{CUSTOMER}/credit", {"credit_limit": "1"})

        # Then it is refused field by field, and nothing is recorded
        assert answer.status == 422
        fields = {p["field"] for p in answer.json()["problems"]}
        assert {"by", "reason"} <= fields
        assert not [e for e in sim.timeline() if e["event"] == "credit_override"]


def test_open_orders_reported_by_the_order_system_count_in_the_exposure(
    invoice_json: Callable[..., bytes], tmp_path: Path
) -> None:
    # Given a buyer on a EUR 20,000 first limit with one invoice of EUR 1,000.00
    with simulation(START) as sim:
        load(sim, tmp_path, report())
        sim.post_document(invoice_json(), "application/json")
        sim.advance_to(datetime(2026, 9, 2, tzinfo=UTC))

        # When the order system reports EUR 15,000 of orders not yet invoiced, and a second
        # invoice of EUR 5,000.00 arrives
        answer = sim.post_action(
            "POST", f"/customers/{CUSTOMER}/open-orders", {"amount": "15000", "by": "erp"}
        )
        second = sim.post_document(
            invoice_json(invoice_number="E2E-2026-0002", total_amount="5000.00"),
            "application/json",
        ).json()
        sim.advance_to(datetime(2026, 9, 3, tzinfo=UTC))

        # Then the orders count: 1,000 + 5,000 + 15,000 is over the limit, so orders are held
        assert answer.status == 200
        detail = checked(sim, second["invoice_id"])
        assert detail["exposure"] == "21000.00"
        assert detail["open_orders"] == "15000"
        assert detail["within_limit"] is False
        reasons = {r["reason"] for r in sim.hold_status(CUSTOMER).json()["reasons"]}
        assert reasons == {"credit_limit_exceeded"}
