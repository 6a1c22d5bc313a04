"""The demo scenario (examples/demo) through the `arflow simulate` command: the story it tells.

Six invoices of Brightwater Components to five customers, with the demo policy (Europe/London,
notices at 09:00 local: 08:00 UTC until 25 October 2026, 09:00 UTC after).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arflow_local.cli import main

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "examples" / "demo" / "scenario.yaml"


@dataclass
class DemoRun:
    exit_code: int
    out: Path
    timeline: list[dict[str, Any]]

    def invoice_id(self, number: str) -> str:
        (received,) = [
            e
            for e in self.timeline
            if e["event"] == "invoice_received" and e["detail"]["invoice_number"] == number
        ]
        return str(received["invoice_id"])

    def story(self, number: str) -> list[tuple[str, str]]:
        invoice_id = self.invoice_id(number)
        return [(e["at"], e["event"]) for e in self.timeline if e["invoice_id"] == invoice_id]

    def events(self, number: str, event: str) -> list[dict[str, Any]]:
        invoice_id = self.invoice_id(number)
        return [e for e in self.timeline if e["invoice_id"] == invoice_id and e["event"] == event]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    # Given the demo scenario
    out = tmp_path_factory.mktemp("demo")

    # When it is simulated from the command line
    exit_code = main(["simulate", str(SCENARIO), "--out", str(out)])

    lines = (out / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    return DemoRun(exit_code, out, [json.loads(line) for line in lines])


def test_demo_runs_cleanly_and_writes_its_outputs(demo: DemoRun) -> None:
    # Then the command succeeds, with all six invoices received and ended
    assert demo.exit_code == 0
    received = [e for e in demo.timeline if e["event"] == "invoice_received"]
    assert [e["detail"]["invoice_number"] for e in received] == [
        f"BW-2026-010{n}" for n in range(1, 7)
    ]
    ended = [e for e in demo.timeline if e["event"] == "lifecycle_ended"]
    assert sorted(e["detail"]["outcome"] for e in ended) == [
        "CLAIMED",
        "CLAIMED",
        "PAID",
        "PAID",
        "PAID",
        "PAID",
    ]
    assert (demo.out / "report.html").is_file()
    # (15 customer notices, 2 escalations, and 4 credit alerts: three grade-C buyers put on
    # shorter terms, and Nordic Tools over its limit with its second invoice)
    assert len(list((demo.out / "outbox").glob("*.eml"))) == 21


def test_early_payer_is_never_reminded(demo: DemoRun) -> None:
    # Then BW-2026-0101, paid ten days before its due date, gets no notice and ends PAID at once
    assert demo.story("BW-2026-0101") == [
        ("2026-09-01T08:00:00Z", "invoice_received"),
        ("2026-09-01T08:00:00Z", "credit_checked"),
        ("2026-09-21T12:00:00Z", "payment_received"),
        ("2026-09-21T12:00:00Z", "invoice_settled"),
        ("2026-09-21T12:00:00Z", "lifecycle_ended"),
    ]
    (ended,) = demo.events("BW-2026-0101", "lifecycle_ended")
    assert ended["detail"]["outcome"] == "PAID"
    invoice_id = demo.invoice_id("BW-2026-0101")
    assert list((demo.out / "outbox").glob(f"*-{invoice_id}.eml")) == []


def test_buyer_who_never_pays_is_claimed_from_the_insurer(demo: DemoRun) -> None:
    # Then BW-2026-0104 (EUR 18,250.00, due 4 October) runs the whole ladder to the claim
    assert [event for _, event in demo.story("BW-2026-0104")] == [
        "invoice_received",
        "credit_checked",
        "reminder_sent",
        "overdue_notice_sent",
        "formal_notice_sent",
        "order_hold_placed",
        "finance_escalated",
        "insurer_notified",
        "claim_submitted",
        "lifecycle_ended",
    ]
    (claim,) = demo.events("BW-2026-0104", "claim_submitted")
    assert claim["at"] == "2026-12-03T09:00:00Z"
    assert claim["detail"]["insurer"] == "Example Credit Insurance plc"
    assert claim["detail"]["amount_claimed"] == "16425.00"
    (ended,) = demo.events("BW-2026-0104", "lifecycle_ended")
    assert ended["detail"]["outcome"] == "CLAIMED"


def test_nordic_tools_stay_on_hold_until_their_second_invoice_is_paid(demo: DemoRun) -> None:
    first, second = demo.invoice_id("BW-2026-0105"), demo.invoice_id("BW-2026-0106")
    holds = [
        (e["at"], e["invoice_id"], e["event"], e["detail"])
        for e in demo.timeline
        if e["event"] in {"order_hold_placed", "order_hold_released"}
        and e["detail"]["customer_id"] == "CUST-NORDIC"
    ]

    # Then the second invoice takes the exposure over the EUR 6,000.00 limit at once, and each
    # overdue invoice adds its reason with its formal letter
    assert [(at, invoice, event, d["reason"]) for at, invoice, event, d in holds] == [
        ("2026-09-14T08:00:00Z", second, "order_hold_placed", "credit_limit_exceeded"),
        ("2026-10-22T08:00:00Z", first, "order_hold_placed", "invoice_overdue"),
        ("2026-10-29T09:00:00Z", second, "order_hold_placed", "invoice_overdue"),
        ("2026-11-04T12:00:00Z", first, "order_hold_released", "invoice_overdue"),
        ("2026-11-04T12:00:00Z", second, "order_hold_released", "credit_limit_exceeded"),
        ("2026-11-07T12:00:00Z", second, "order_hold_released", "invoice_overdue"),
    ]

    # And paying the first (exposure back within the limit) leaves the customer on hold for the
    # second's overdue; only paying the second releases it
    released = [detail["customer_released"] for *_, event, detail in holds if "released" in event]
    assert released == [False, False, True]
    (paid_second,) = demo.events("BW-2026-0106", "payment_received")
    assert paid_second["at"] == "2026-11-07T12:00:00Z"


def test_chinese_buyer_without_due_date_pays_half_and_is_claimed_for_the_rest(
    demo: DemoRun,
) -> None:
    # Then BW-2026-0103 is due 45 days after issue, by its terms, and dunned in Chinese
    (received,) = demo.events("BW-2026-0103", "invoice_received")
    assert (received["detail"]["due_date"], received["detail"]["due_date_source"]) == (
        "2026-10-18",
        "payment_terms",
    )
    (reminder,) = demo.events("BW-2026-0103", "reminder_sent")
    assert reminder["detail"]["language"] == "zh-CN"

    # And after EUR 4,200.00 of EUR 8,400.00 is paid, the claim is 90 % of what is left
    (formal,) = demo.events("BW-2026-0103", "formal_notice_sent")
    assert formal["detail"]["amount_outstanding"] == "4200.00"
    (claim,) = demo.events("BW-2026-0103", "claim_submitted")
    assert claim["detail"]["amount_claimed"] == "3780.00"
